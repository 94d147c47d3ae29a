"""The ``personas`` command: a thin layer over the library, one sub-app per verb."""

from __future__ import annotations

import typer

from personas import __version__
from personas.cli import data, discover, evaluate, keys, run
from personas.cli import encode as encode_cli
from personas.cli import recommend as recommend_cli
from personas.cli import serve as serve_cli
from personas.cli._common import console

app = typer.Typer(
    name="personas",
    help="Discover groups of similar users (personas) from text and behaviour, describe them, recommend.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
discover.register(app)
app.command("evaluate")(evaluate.evaluate)
app.command("run")(run.run)
app.command("recommend")(recommend_cli.recommend)
app.command("demo")(run.demo)
app.command("encode")(encode_cli.encode)
app.command("serve")(serve_cli.serve)
app.add_typer(keys.app, name="keys")


@app.command()
def version() -> None:
    """Print the installed version."""
    console.print(__version__)


def main() -> None:
    app()
