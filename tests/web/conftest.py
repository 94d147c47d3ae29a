"""The dashboard served by the real uvicorn server (in a thread) over a small run, and a headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from personas.api import ServeSettings, create_app
from personas.api.testing import ServerThread, write_example_run, write_review_run


@pytest.fixture(scope="session")
def web_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example_run(tmp_path_factory.mktemp("web") / "run")


@pytest.fixture
def dashboard_url(web_run_dir: Path, tmp_path: Path) -> Iterator[str]:
    app = create_app(ServeSettings(model_dir=web_run_dir, database_url=f"sqlite:///{tmp_path / 'web.sqlite'}"))
    with ServerThread(app) as server:
        yield server.url


@pytest.fixture
def review_dashboard_url(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Iterator[str]:
    """The dashboard over a run whose products have ids and no titles (one review per user)."""
    run = write_review_run(tmp_path_factory.mktemp("web-reviews") / "run")
    app = create_app(ServeSettings(model_dir=run, database_url=f"sqlite:///{tmp_path / 'reviews.sqlite'}"))
    with ServerThread(app) as server:
        yield server.url
