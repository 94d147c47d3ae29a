"""Shared by the API tests: one small run folder, a throwaway PostgreSQL, storages on both databases."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from personas.api import ServeSettings, Storage, create_app
from personas.api.auth import create_key
from personas.api.testing import free_port, write_example_run
from personas.pipeline import RunArtefact, load_run


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three obvious tastes (space, romance, crime), 12 users each, TF-IDF text, k=3, router saved."""
    return write_example_run(tmp_path_factory.mktemp("serve") / "run")


@pytest.fixture(scope="session")
def artefact(run_dir: Path) -> RunArtefact:
    return load_run(run_dir)


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free loopback port (Debian's binaries), removed afterwards.

    PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` OS user.
    """
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed; `make test` installs it (scripts/ensure-system-deps).")
    root = Path(tempfile.mkdtemp(prefix="personas-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    port = free_port()
    try:
        subprocess.run(
            [
                *as_user,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        subprocess.run(
            [
                *as_user,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            ],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as exc:
        log = (root / "log").read_text(errors="replace") if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL: {exc.stderr!r} {log[-2000:]}") from exc
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


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
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as test_client:
        yield test_client
