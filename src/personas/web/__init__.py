"""The dashboard: one HTML page, its script and style, served by the API (no build step, no CDN)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "plotly_js"]

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"


def plotly_js() -> Path:
    """plotly.min.js as installed with the plotly package (the machine may be offline)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
