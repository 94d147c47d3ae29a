"""``personas data``: fetch built-in datasets and describe any dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from personas.cli._common import (
    DelimiterOption,
    EncodingOption,
    MapOption,
    UnknownIdsOption,
    console,
    err_console,
    open_dataset,
    user_errors,
)
from personas.data import Dataset, summarize
from personas.data import fetch as fetch_dataset
from personas.data.summary import DatasetSummary

app = typer.Typer(help="Fetch built-in datasets and describe datasets.", no_args_is_help=True)


def print_summary(summary: DatasetSummary) -> None:
    table = Table(title=f"Dataset {summary.name}", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")

    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    rows: list[tuple[str, str]] = [
        ("users", f"{summary.users:,}"),
        ("items", f"{summary.items:,}"),
        ("interactions", f"{summary.interactions:,}"),
        ("sparsity", f"{100 * summary.sparsity:.2f}% (density {100 * summary.density:.2f}%)"),
        ("interactions per user (median)", f"{summary.interactions_per_user_median:g}"),
    ]
    if summary.rating_min is not None:
        rows.append(("ratings", f"{summary.rating_min:g} to {summary.rating_max:g}, mean {summary.rating_mean:.2f}"))
    if summary.first_time is not None:
        rows.append(("time span", f"{summary.first_time} to {summary.last_time}"))
    rows += [
        ("users with own text", pct(summary.users_with_text)),
        ("items with a title", pct(summary.items_with_title)),
        ("interactions with a review", pct(summary.interactions_with_review)),
        ("tags", f"{summary.tags:,} by {summary.users_with_tags:,} users"),
        ("user attributes", ", ".join(summary.user_attributes) or "-"),
        ("item attributes", ", ".join(summary.item_attributes) or "-"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


@app.command("fetch")
@user_errors
def fetch(
    name: Annotated[str, typer.Argument(help="Built-in dataset: ml-100k or ml-latest-small.")],
    force: Annotated[bool, typer.Option(help="Fetch again even if the cache is valid.")] = False,
) -> None:
    """Download a built-in dataset into the cache (PERSONAS_HOME), verifying every file."""
    path = fetch_dataset(name, force=force, echo=lambda m: err_console.print(m, highlight=False))
    console.print(f"{name}: {path}")


def _open(
    source: str, map_: list[str] | None, unknown_ids: str, encoding: str, delimiter: str | None
) -> tuple[Dataset, Any]:
    """The dataset of a built-in name, a data file or folder, or a run config (its [data] section, read as
    ``personas run`` reads it); the config's [evaluate] section, or None."""
    path = Path(source)
    if path.is_file() and path.suffix.lower() == ".toml":
        from personas.pipeline import Pipeline, load_config

        config = load_config(path)
        return Pipeline(config, console=err_console).load(), config.evaluate
    return open_dataset(source, map_, unknown_ids, encoding=encoding, delimiter=delimiter), None


def _evaluation_forecast(dataset: Dataset, section: Any) -> dict[str, Any]:
    """Whether the evaluation of `personas run` (the config's [evaluate], or the default warm protocol) can
    run on this data; the warning says why not and what to set, in the form the user will type it."""
    from personas.evaluate.feasibility import protocol_check
    from personas.pipeline.run import evaluate_fix

    if section is not None and not section.enabled:
        return {"protocol": section.protocol, "runs": False, "reason": "disabled ([evaluate] enabled = false)"}
    protocol = "warm" if section is None else section.protocol
    params: dict[str, Any] = {}
    if section is not None:
        params = {
            "test_fraction": section.test_fraction,
            "min_interactions": section.min_interactions,
            "n_shots": section.n_shots,
        }
    check = protocol_check(dataset, protocol, **params)
    reason = check.reason or check.unlearnable
    forecast: dict[str, Any] = {"protocol": protocol, "runs": reason is None, "reason": reason, "fixes": check.fixes}
    if reason is None:
        return forecast
    if section is not None:
        fixes = " or ".join(evaluate_fix(fix) for fix in check.fixes)
        where = "set " + fixes + " in the config file"
    else:
        flags = [f"--protocol {fix['protocol']}" for fix in check.fixes if "protocol" in fix]
        toml = " or ".join(evaluate_fix(fix) for fix in check.fixes)
        where = (f"with `personas evaluate` use {flags[0]}; " if flags else "") + f"in a run config set {toml}"
    err_console.print(
        "[yellow]Warning:[/] " + escape(f"evaluation ({protocol}) will be skipped: {reason}. To evaluate, {where}."),
        highlight=False,
    )
    return forecast


@app.command("info")
@user_errors
def info(
    source: Annotated[
        str, typer.Argument(help="A built-in dataset name, a data file or folder, or a run config (TOML).")
    ],
    map_: MapOption = None,
    encoding: EncodingOption = "utf-8",
    delimiter: DelimiterOption = None,
    unknown_ids: UnknownIdsOption = "error",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Counts, sparsity, rating and time ranges, and text coverage of a dataset; warns when the evaluation of
    `personas run` cannot run on it (and why)."""
    dataset, section = _open(source, map_, unknown_ids, encoding, delimiter)
    summary = summarize(dataset)
    forecast = _evaluation_forecast(dataset, section)
    if as_json:
        console.print_json(json.dumps({**summary.as_dict(), "evaluation": forecast}, default=str))
    else:
        print_summary(summary)
