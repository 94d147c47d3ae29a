"""The dashboard served by the real uvicorn server (in a thread) over a small run, and a headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from personas.api import ServeSettings, create_app
from personas.api.testing import UNLIMITED, ServerThread, key_headers, write_example_run, write_review_run


@pytest.fixture(scope="session")
def web_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example_run(tmp_path_factory.mktemp("web") / "run")


@pytest.fixture
def web_database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'web.sqlite'}"


@pytest.fixture
def dashboard_key(web_database: str) -> str:
    """A read-write key in the dashboard's database (what `personas keys create --scope read,write` prints)."""
    return key_headers(web_database, "read,write")["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def dashboard_url(web_run_dir: Path, web_database: str) -> Iterator[str]:
    """The local demo: `personas serve --allow-anonymous-read` (reads open; writes need dashboard_key)."""
    app = create_app(
        ServeSettings(model_dir=web_run_dir, database_url=web_database, allow_anonymous_read=True, **UNLIMITED)
    )
    with ServerThread(app) as server:
        yield server.url


@pytest.fixture
def locked_dashboard_url(web_run_dir: Path, web_database: str) -> Iterator[str]:
    """The same, served as by default: nothing without a key."""
    app = create_app(ServeSettings(model_dir=web_run_dir, database_url=web_database, **UNLIMITED))
    with ServerThread(app) as server:
        yield server.url


@pytest.fixture
def review_dashboard_url(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Iterator[str]:
    """The dashboard over a run whose products have ids and no titles (one review per user)."""
    run = write_review_run(tmp_path_factory.mktemp("web-reviews") / "run")
    db = f"sqlite:///{tmp_path / 'reviews.sqlite'}"
    app = create_app(ServeSettings(model_dir=run, database_url=db, allow_anonymous_read=True, **UNLIMITED))
    with ServerThread(app) as server:
        yield server.url
