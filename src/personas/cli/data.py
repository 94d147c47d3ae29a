"""``personas data``: fetch built-in datasets and describe any dataset."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from personas.cli._common import console, err_console, open_dataset, user_errors
from personas.data import fetch as fetch_dataset
from personas.data import summarize
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


@app.command("info")
@user_errors
def info(
    source: Annotated[str, typer.Argument(help="A built-in dataset name, a data file or a data folder.")],
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="Column mapping KIND.FIELD=COLUMN, e.g. interactions.user_id=userId."),
    ] = None,
    unknown_ids: Annotated[str, typer.Option(help="Interactions naming unknown ids: error or drop.")] = "error",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Counts, sparsity, rating and time ranges, and text coverage of a dataset."""
    summary = summarize(open_dataset(source, map_, unknown_ids))
    if as_json:
        console.print_json(json.dumps(summary.as_dict()))
    else:
        print_summary(summary)
