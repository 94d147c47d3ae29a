"""The dashboard: one HTML page, its script and style, served by the API (no build step, no CDN)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path
from string import Template

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "plotly_js", "render_index"]

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"


def render_index(examples: Mapping[str, str]) -> str:
    """The dashboard page with its fields' examples taken from the loaded run (``user_id``: a user of the run,
    ``item_ids``: item ids of the run, ``text``: words its users wrote), HTML-escaped."""

    def hint(what: str, example: str) -> str:
        return escape(f"{what}, e.g. {example}" if example else what, quote=True)

    page = Template((TEMPLATES_DIR / "index.html").read_text(encoding="utf-8"))
    return page.substitute(
        user_placeholder=hint("user id", examples.get("user_id", "")),
        text_placeholder=hint("a few words about the user", examples.get("text", "")),
        items_placeholder=hint("item ids they took, comma-separated (optional)", examples.get("item_ids", "")),
    )


def plotly_js() -> Path:
    """plotly.min.js as installed with the plotly package (the machine may be offline)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
