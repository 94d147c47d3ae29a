"""The dashboard served by the real uvicorn server (in a thread) over a small run, and a headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from personas.api import ServeSettings, create_app
from personas.api.testing import ServerThread, write_example_run


@pytest.fixture(scope="session")
def web_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example_run(tmp_path_factory.mktemp("web") / "run")


@pytest.fixture
def dashboard_url(web_run_dir: Path, tmp_path: Path) -> Iterator[str]:
    app = create_app(ServeSettings(model_dir=web_run_dir, database_url=f"sqlite:///{tmp_path / 'web.sqlite'}"))
    with ServerThread(app) as server:
        yield server.url
