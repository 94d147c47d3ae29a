"""The ``personas`` command: a thin layer over the library, one sub-app per verb."""

from __future__ import annotations

import typer

from personas import __version__
from personas.cli import data, evaluate
from personas.cli._common import console, open_dataset, user_errors
from personas.data import summarize

app = typer.Typer(
    name="personas",
    help="Discover groups of similar users (personas) from text and behaviour, describe them, recommend.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.command("evaluate")(evaluate.evaluate)


@app.command()
def version() -> None:
    """Print the installed version."""
    console.print(__version__)


@app.command()
@user_errors
def demo(dataset: str = typer.Option("ml-100k", help="Built-in dataset to run on.")) -> None:
    """The main job on built-in data: fetch MovieLens-100K and summarise it."""
    data.print_summary(summarize(open_dataset(dataset)))


def main() -> None:
    app()
