"""Command-line interface (Typer)."""

from personas.cli.main import app, main

__all__ = ["app", "main"]
