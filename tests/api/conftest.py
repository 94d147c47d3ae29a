"""Shared by the API tests: one small run folder, a throwaway PostgreSQL, storages on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from personas.api import ServeSettings, Storage, create_app
from personas.api.auth import create_key
from personas.api.testing import PostgresCluster, write_example_run
from personas.pipeline import RunArtefact, load_run


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three obvious tastes (space, romance, crime), 12 users each, TF-IDF text, k=3, router saved."""
    return write_example_run(tmp_path_factory.mktemp("serve") / "run")


@pytest.fixture(scope="session")
def artefact(run_dir: Path) -> RunArtefact:
    return load_run(run_dir)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for the session, removed afterwards."""
    if not PostgresCluster.available():
        pytest.skip("PostgreSQL is not installed; `make test` installs it (scripts/ensure-system-deps).")
    cluster = PostgresCluster().start()
    try:
        yield cluster.url
    finally:
        cluster.remove()


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """A cluster of this test's own, which it may stop and start (outages) without disturbing the others."""
    if not PostgresCluster.available():
        pytest.skip("PostgreSQL is not installed; `make test` installs it (scripts/ensure-system-deps).")
    cluster = PostgresCluster().start()
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope="session")
def postgres_database(postgres_url: str) -> Callable[[str], str]:
    """Make an empty database of that name in the throwaway cluster; returns its URL (tests do not share one)."""

    def make(name: str) -> str:
        engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return f"{postgres_url.rsplit('/', 1)[0]}/{name}"

    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """An empty storage on SQLite (file, WAL) and on the real PostgreSQL."""
    url = (
        f"sqlite:///{tmp_path / 'db.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    )
    store = Storage(url)
    store.drop_schema()
    store.create_schema()
    try:
        yield store
    finally:
        store.drop_schema()
        store.close()


@pytest.fixture
def settings(run_dir: Path, tmp_path: Path) -> ServeSettings:
    # No rate limits here: these tests send requests faster than any client would (test_security_auth has its own).
    return ServeSettings(
        model_dir=run_dir,
        database_url=f"sqlite:///{tmp_path / 'serve.sqlite'}",
        max_n=20,
        max_items=5,
        rate_limit_per_key="",
        rate_limit_per_address="",
    )


@pytest.fixture
def client(settings: ServeSettings) -> Iterator[TestClient]:
    """The app with an admin key in every request (test_security_auth checks what other callers get)."""
    app = create_app(settings)
    _, key = create_key(app.state.service.storage, "admin", name="tests")
    # An allowed Host (localhost), and the key.
    with TestClient(app, base_url="http://localhost", headers={"Authorization": f"Bearer {key}"}) as test_client:
        yield test_client
