"""``personas evaluate``: run a public protocol on a dataset and write the table with its protocol."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from personas._files import write_atomic
from personas.cli._common import (
    DelimiterOption,
    EncodingOption,
    MapOption,
    UnknownIdsOption,
    console,
    data_options,
    err_console,
    open_dataset,
    user_errors,
)
from personas.data import Dataset
from personas.errors import DataError
from personas.evaluate.protocols import DEFAULT_MODELS, PROTOCOLS
from personas.evaluate.report import ExperimentResult


def _print(label: str, result: ExperimentResult) -> None:
    table = Table(title=f"{label} on {result.protocol['dataset']}", title_justify="left")
    table.add_column("model")
    shown = [
        m
        for m in ("Recall@10", "Recall@20", "NDCG@10", "NDCG@20", "HitRate@10", "Coverage@10")
        if m in result.runs[0].overall
    ]
    for m in shown:
        table.add_column(m, justify="right")
    for run in result.runs:
        mark = " (personas)" if run.name in result.ours else ""
        table.add_row(run.name + mark, *[f"{run.overall[m]:.4f}" for m in shown])
    console.print(table)
    for c in result.headline_comparisons()[:1]:
        console.print(
            f"{c.a} vs best other {c.b}: {c.metric} {c.mean_a:.4f} vs {c.mean_b:.4f} "
            f"({100 * c.relative:+.1f}%, Wilcoxon p={c.p_value:.2g}, {c.n_users} users)"
        )


@user_errors
def evaluate(
    dataset: Annotated[str, typer.Option(help="Built-in dataset (ml-100k, ml-latest-small) or a data path.")] = (
        "ml-100k"
    ),
    protocol: Annotated[
        str, typer.Option(help=f"One of: {', '.join(PROTOCOLS)}, or groups (group quality on the warm split).")
    ] = "warm",
    models: Annotated[
        str | None, typer.Option(help=f"Comma-separated models (default all): {','.join(DEFAULT_MODELS)}.")
    ] = None,
    groups: Annotated[
        str, typer.Option(help="Group source: auto (chosen on validation), profile, side or behaviour.")
    ] = "auto",
    n_groups: Annotated[int | None, typer.Option(help="Number of groups (default: 16, or chosen by auto).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split and tie-breaking.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Folder for <dataset>-<protocol>.md/.json tables.")] = None,
    text_encoder: Annotated[
        str | None,
        typer.Option(
            help="Encode the items' texts (and cold users' side texts) with this pretrained encoder (minilm) and "
            "add the text models (TextMatch, TextItemKNN)."
        ),
    ] = None,
    tune: Annotated[
        bool,
        typer.Option(
            "--tune",
            help="With --text-encoder: train a projection head on each split's train interactions and put item "
            "texts and cold users' texts through it (tables get a -tuned suffix).",
        ),
    ] = False,
    map_: MapOption = None,
    encoding: EncodingOption = "utf-8",
    delimiter: DelimiterOption = None,
    unknown_ids: UnknownIdsOption = "error",
) -> None:
    """Run a protocol: every model tuned on validation, ranked over all items, with the protocol printed."""
    from personas.evaluate.protocols import run_protocol

    data = open_dataset(dataset, map_, unknown_ids, encoding=encoding, delimiter=delimiter)
    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    # The command as options, not sys.argv: the same text whether run from a shell or a test runner.
    parts = ["personas", "evaluate", "--dataset", dataset, "--protocol", protocol]
    parts += data_options(map_, encoding, delimiter) + (
        ["--unknown-ids", unknown_ids] if unknown_ids != "error" else []
    )
    if models:
        parts += ["--models", models]
    if groups != "auto":
        parts += ["--groups", groups]
    if n_groups is not None:
        parts += ["--n-groups", str(n_groups)]
    if seed:
        parts += ["--seed", str(seed)]
    if text_encoder is not None:
        parts += ["--text-encoder", text_encoder]
    if tune:
        parts += ["--tune"]
    if out is not None:
        parts += ["--out", str(out)]
    command = " ".join(shlex.quote(p) for p in parts)

    def done(label: str, result: ExperimentResult) -> None:
        _print(label, result)
        if out is not None:
            suffix = f"-{text_encoder}" if text_encoder else ""  # beside the table without the text space
            suffix += "-tuned" if tune else ""
            md, js = result.save(out, f"{data.name}-{label}{suffix}", command=command)
            err_console.print(f"wrote {md} and {js}", highlight=False)

    if protocol == "groups":
        _groups(data, seed, command, out)
        return
    _warn_if_unscorable(data, protocol, seed)
    run_protocol(
        data,
        protocol,
        models=names,
        groups=groups,
        n_groups=n_groups,
        seed=seed,
        progress=True,
        on_result=done,
        text_encoder=text_encoder,
        tune=tune,
    )


def _groups(data: Dataset, seed: int, command: str, out: Path | None) -> None:
    import json

    from personas.evaluate.protocols import group_quality_markdown, group_quality_table

    rows, result = group_quality_table(data, seed=seed)
    text = group_quality_markdown(rows, result, command=command)
    console.print(text, markup=False, highlight=False)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / f"{data.name}-groups.md", text)
        payload = {"command": command, "protocol": result.protocol if result else None, "rows": rows}
        write_atomic(out / f"{data.name}-groups.json", json.dumps(payload, indent=2, default=str))
        err_console.print(f"wrote {out / f'{data.name}-groups.md'}", highlight=False)


def _warn_if_unscorable(data: Dataset, protocol: str, seed: int) -> None:
    """Say before the table when the protocol cannot run on the data or every number would be 0, why, and
    which --protocol would work."""
    from rich.markup import escape

    from personas.evaluate.feasibility import PROTOCOL_NAMES, protocol_check
    from personas.evaluate.protocols import protocol_splits

    if protocol not in PROTOCOL_NAMES:
        return  # run_protocol names the protocols
    check = protocol_check(data, protocol, seed=seed, splitters=protocol_splits(protocol, seed=seed))
    if check.ok and check.unlearnable is None:
        return
    other = [f"--protocol {fix['protocol']}" for fix in check.fixes if "protocol" in fix]
    advice = f"try {other[0]}" if other else "the data needs items taken by several users to be evaluated"
    if check.reason is not None:  # the splitter would stop with its own words; these are the CLI's
        raise DataError(f"The {protocol} protocol cannot run on {data.name}: {check.reason}; {advice}.")
    err_console.print(
        "[yellow]Warning:[/] "
        + escape(f"{protocol}: {check.unlearnable}. The table below measures nothing on this data; {advice}."),
        highlight=False,
    )
