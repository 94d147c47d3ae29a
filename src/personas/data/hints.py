"""Hints in the form the user typed: a command-line flag, a TOML key, or a Python keyword argument.

The data layer does not know who called it, so its error messages ask :func:`setting` how to spell a fix
("--encoding latin-1", ``[data] encoding = "latin-1"``, ``encoding='latin-1'``). The CLI and the pipeline say
who they are with :func:`hint_style` around their loading; Python is the default.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

__all__ = ["HintStyle", "column_setting", "current_style", "hint_style", "setting"]

HintStyle = Literal["python", "cli", "toml"]
_STYLE: ContextVar[HintStyle] = ContextVar("personas_hint_style", default="python")


@contextmanager
def hint_style(style: HintStyle) -> Iterator[None]:
    """Within the block, hints are written for ``style`` (the CLI: flags; a pipeline TOML: keys)."""
    token = _STYLE.set(style)
    try:
        yield
    finally:
        _STYLE.reset(token)


def current_style() -> HintStyle:
    """Who the hints are written for now."""
    return _STYLE.get()


def setting(name: str, value: str) -> str:
    """How the user sets a loading option: ``--encoding latin-1`` / ``[data] encoding = "latin-1"`` /
    ``encoding='latin-1'``."""
    style = _STYLE.get()
    if style == "cli":
        shown = "tab" if value == "\t" else value
        return f"--{name.replace('_', '-')} {shlex.quote(shown)}"
    if style == "toml":
        return f"[data] {name} = {json.dumps(value)}"
    return f"{name}={value!r}"


def column_setting(kind: str, canonical: str, column: str = "<column in your file>") -> str:
    """How the user maps a file's column to a canonical field."""
    style = _STYLE.get()
    if style == "cli":
        return f"--map {kind}.{canonical}={shlex.quote(column) if column[0] != '<' else column}"
    if style == "toml":
        return f"[data.columns.{kind}] {canonical} = {json.dumps(column)}"
    return f"columns={{'{canonical}': '{column}'}}"
