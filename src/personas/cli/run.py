"""``personas run CONFIG.toml`` and ``personas demo``: the main job end to end."""

from __future__ import annotations

import shlex
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.markup import escape
from rich.table import Table

from personas.cli._common import console, err_console, user_errors
from personas.data.loaders import FORMATS
from personas.errors import ConfigError
from personas.pipeline import Pipeline, PipelineResult, load_config

if TYPE_CHECKING:
    from personas.spark import SparkResult


def print_summary(result: PipelineResult | SparkResult, folder: Path) -> None:
    ds = result.dataset
    console.print(
        f"[bold]{ds.name}[/]: {ds.n_users:,} users, {ds.n_items:,} items, {ds.n_interactions:,} interactions",
        highlight=False,
    )
    personas = Table(title=f"{len(result.personas)} personas in {result.dataset.name}", title_justify="left")
    for column in ("#", "name", "users", "keywords", "distinctive items"):
        personas.add_column(column, overflow="fold")
    for p in result.personas:
        personas.add_row(
            str(p.group),
            p.display_name,
            f"{p.size} ({100 * p.share:.0f}%)",
            ", ".join(k.term for k in p.keywords[:5]),
            "; ".join(i.title for i in p.distinctive_items[:3]),
        )
    console.print(personas)
    grouping = result.quality.get("grouping")
    if grouping:  # the finder's check of its own result: say it beside the personas, not only in a file
        console.print(
            f"Groups: {grouping['n_groups']}, the largest holds {grouping['largest_share']:.0%} of users, "
            f"{grouping['noise_share']:.0%} in no group",
            highlight=False,
        )
        for warning in grouping["warnings"]:
            console.print(f"[yellow]Warning:[/] {warning}", highlight=False)
    choice = getattr(result, "weight_choice", None)  # behaviour_weight = "auto" (the local engine)
    if choice is not None:
        figures = ", ".join(f"{s.weight:g}: {s.stability:.2f}" for s in choice.scores)
        console.print(
            f"Behaviour weight: {choice.weight:g}, chosen on the data (group stability by weight: {figures})",
            highlight=False,
        )
    if result.metrics is not None:
        section = result.config.evaluate
        share = 100 * (section.test_fraction or 0.2)
        titles = {
            "warm": f"Warm users: per-user temporal split (last {share:g}% test), full ranking",
            "cold-users": f"New users: {share:g}% of users held out whole, full ranking",
        }
        title = titles.get(section.protocol, f"{section.protocol} protocol, full ranking")
        metrics = Table(title=title, title_justify="left")
        columns = [c for c in result.metrics.columns if "@" in c]
        metrics.add_column("model")
        for column in columns:
            metrics.add_column(column, justify="right")
        for name, row in result.metrics.iterrows():
            metrics.add_row(str(name), *(f"{row[c]:.4f}" for c in columns))
        console.print(metrics)
    evaluation = getattr(result, "evaluation", {})
    if evaluation.get("status") == "skipped":
        console.print(f"Evaluation skipped: {escape(str(evaluation.get('reason')))}.", highlight=False)
    report = folder / "report.html"
    console.print(f"Artefacts: {folder}" + (f"\nReport:    {report}" if report.exists() else ""))


def run_config(
    config_path: Path,
    output: Path | None,
    engine: Literal["local", "spark"] | None = None,
    master: str | None = None,
    resume: bool = False,
) -> None:
    config = load_config(config_path)
    updates: dict[str, object] = {}
    if output is not None:
        updates["output"] = config.output.model_copy(update={"dir": output})
    if engine is not None:
        updates["engine"] = engine
    if master is not None:
        updates["master"] = master
    config = config.model_validate({**config.model_dump(), **updates}) if updates else config
    result: PipelineResult | SparkResult
    if config.engine == "spark":
        from personas.spark import SparkPipeline

        if resume:
            raise ConfigError("--resume works with the local engine only; the Spark engine runs every stage.")

        result = SparkPipeline(config, console=err_console).run()
    else:
        from personas.pipeline.streamed import StreamedPipeline, wants_streaming

        if wants_streaming(config):  # streaming = "on", or "auto" and the data exceed memory_budget
            if resume:
                raise ConfigError("--resume works with the in-memory local engine; a streamed run runs every stage.")
            streamed = StreamedPipeline(config, console=err_console).run()
            console.print(
                f"{streamed.n_users:,} users, {streamed.n_items:,} items, {streamed.n_interactions:,} interactions, "
                f"streamed in chunks of {streamed.plan.chunk_users:,} users: {len(streamed.personas)} personas, "
                f"{', '.join(p.display_name for p in streamed.personas[:5])}"
                + (" ..." if len(streamed.personas) > 5 else "")
                + f"\nArtefacts: {config.output.dir}",
                highlight=False,
            )
            return
        command = " ".join(
            ["personas", "run", shlex.quote(str(config_path))]
            + (["--output", shlex.quote(str(output))] if output is not None else [])
            + ["--resume"]
        )
        result = Pipeline(config, console=err_console, resume=resume, command=command).run()
    print_summary(result, config.output.dir)


@user_errors
def run(
    config: Annotated[Path, typer.Argument(help="Pipeline config (TOML).", exists=False)],
    output: Annotated[Path | None, typer.Option(help="Artefact folder (overrides [output] dir).")] = None,
    engine: Annotated[
        str | None, typer.Option(help="'local' (this process) or 'spark' (overrides the config's engine).")
    ] = None,
    master: Annotated[
        str | None, typer.Option(help="Spark master URL for --engine spark, e.g. local[2] or spark://host:7077.")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Reuse the finished stages of the run folder (kept when a run fails) whose data and settings are "
            "unchanged; run the rest."
        ),
    ] = False,
) -> None:
    """Run the pipeline: load, profile texts, encode, discover, describe, recommend, evaluate, write."""
    if config.suffix.lower() in FORMATS:
        raise ConfigError(
            f"{config} is a data file; `personas run` takes a run config (TOML) whose [data] section names it, e.g. "
            f'[data] interactions = "{config.name}". `personas data info {config}` describes the data itself.'
        )
    if engine not in (None, "local", "spark"):
        raise ConfigError(f"The '--engine' option must be 'local' or 'spark'. Got {engine!r} instead.")
    run_config(config, output, engine, master, resume)  # type: ignore[arg-type]


@user_errors
def demo(
    output: Annotated[Path, typer.Option(help="Artefact folder.")] = Path("runs/demo"),
) -> None:
    """The main job on built-in data: the whole pipeline on MovieLens-100K with the shipped config."""
    with as_file(files("personas.pipeline") / "demo.toml") as path:
        run_config(path, output)
