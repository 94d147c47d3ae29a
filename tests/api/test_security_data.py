"""Personal data, concurrency and start-up checks of the service, checked where they matter: in the database
file itself (sqlite3 and its raw bytes), against a real server process under a burst of concurrent clients,
and with the real PostgreSQL stopped mid-run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from personas.api import ServeSettings, Storage, create_app
from personas.api.testing import TASTES, UNLIMITED, PostgresCluster, ServerProcess, free_port, item_id, keyed_client

PII = "Jane Roe, jane.roe@example.com, +44 20 7946 0958, loves space stories"
SPACE = [item_id(t) for t in TASTES["space"]]
CRIME = [item_id(t) for t in TASTES["crime"]]


def sqlite_settings(run_dir: Path, db: Path, **extra: object) -> ServeSettings:
    values = {**UNLIMITED, **extra}
    return ServeSettings(model_dir=run_dir, database_url=f"sqlite:///{db}", max_items=10, **values)  # type: ignore[arg-type]


def file_bytes(db: Path) -> bytes:
    """The database file and its WAL, as they are on disk."""
    wal = db.with_name(db.name + "-wal")
    return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def rows(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, args).fetchall()


# -- erasure ---------------------------------------------------------------------------------------------


def test_delete_erases_text_vector_and_events_from_the_database_file(run_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "serve.sqlite"
    settings = sqlite_settings(run_dir, db, keep_text=True)
    # A vector with bytes that occur nowhere else (this TF-IDF run has no encoder, so it is stored directly,
    # in the service's own format).
    vector = np.array([1.2345678e-3, -9.876543e2, 3.1415927, 2.7182817], dtype=np.float32)
    with keyed_client(create_app(settings)) as client:
        made = client.post("/users", json={"text": PII, "items": SPACE[:2]})
        assert made.status_code == 201
        uid = made.json()["user_id"]
        assert client.post(f"/users/{uid}/events", json={"items": CRIME[:3]}, headers={"Idempotency-Key": "k1"})
        client.app.state.service.storage.add_user(  # type: ignore[attr-defined]
            "new-vector0000001", text=None, persona=0, vector=vector, items=[SPACE[3]]
        )
        kept = rows(db, "SELECT text FROM new_users WHERE user_id = ?", uid)
        assert kept == [(PII,)]  # kept while the user exists (keep_text=true)
        assert rows(db, "SELECT count(*) FROM events WHERE user_id = ?", uid) == [(5,)]

        for user, events in ((uid, 5), ("new-vector0000001", 1)):
            gone = client.delete(f"/users/{user}")
            assert gone.status_code == 200, gone.text
            assert gone.json() == {"user_id": user, "events_erased": events}
            assert client.get(f"/users/{user}/persona").status_code == 404
            assert client.get(f"/users/{user}/recommendations").status_code == 404
            assert client.delete(f"/users/{user}").status_code == 404

        on_disk = file_bytes(db)  # while the server still runs: the erasure is on disk already
        for secret in (PII.encode(), b"jane.roe@example.com", uid.encode(), b"new-vector0000001", vector.tobytes()):
            assert secret not in on_disk, secret
    for table in ("new_users", "events", "idempotency_keys"):
        assert rows(db, f"SELECT count(*) FROM {table}") == [(0,)], table
    audit = rows(db, "SELECT action, subject, detail FROM audit ORDER BY id")
    assert [(action, detail) for action, _, detail in audit] == [
        ("delete_user", "events=5"),
        ("delete_user", "events=1"),
    ]
    assert all(len(str(subject)) == 64 and uid not in str(subject) for _, subject, _ in audit)


def test_a_run_user_cannot_be_erased_and_nothing_changes(client: TestClient) -> None:
    client.post("/users/crime-1/events", json={"items": [item_id("Bank Job")]})
    refused = client.delete("/users/crime-1")
    assert refused.status_code == 409
    body = refused.json()
    assert body["error"] == "conflict" and "run folder" in body["detail"] and "nothing was erased" in body["detail"]
    assert client.get("/users/crime-1/persona").json()["events"] == 1


def test_without_keep_text_only_the_vector_and_a_keyed_hash_are_stored(run_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "serve.sqlite"
    with keyed_client(create_app(sqlite_settings(run_dir, db))) as client:  # keep_text defaults to false
        made = client.post("/users", json={"text": PII, "n": 3})
        assert made.status_code == 201 and len(made.json()["recommendations"]["items"]) == 3
        uid = made.json()["user_id"]
        again = client.get(f"/users/{uid}/recommendations", params={"n": 3})
        assert again.status_code == 200 and again.json()["persona"] == made.json()["persona"]["group"]
        assert PII.encode() not in file_bytes(db) and b"jane.roe" not in file_bytes(db)
    [(stored_text, digest)] = rows(db, "SELECT text, text_hash FROM new_users WHERE user_id = ?", uid)
    [(salt,)] = rows(db, "SELECT value FROM service_meta WHERE key = 'salt'")
    assert stored_text is None
    assert digest == hashlib.blake2b(PII.encode(), key=salt, digest_size=32).hexdigest()
    assert digest != hashlib.blake2b(PII.encode(), digest_size=32).hexdigest()  # keyed: not a plain hash


def test_erase_on_both_databases_leaves_only_an_audit_record(storage: Storage) -> None:
    storage.add_user("u9", text="secret words", persona=1, vector=np.ones(3, np.float32), items=["a", "b"])
    storage.add_events("u9", ["c"])
    storage.add_events("u10", ["a"])
    with storage.writing("u9") as write:
        assert write.erase() == 3
    assert storage.lookup("u9") == (None, [])
    assert storage.lookup("u10") == (None, ["a"])  # nobody else's events
    [(_, action, subject, detail)] = storage.audit_log()
    assert (action, subject, detail) == ("delete_user", storage.text_hash("u9"), "events=3")


def test_a_database_made_before_text_hashes_gets_the_column(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as connection:
        connection.execute(
            "CREATE TABLE new_users (user_id VARCHAR(64) PRIMARY KEY, text TEXT, persona INTEGER NOT NULL, "
            "vector BLOB, created_at DATETIME NOT NULL)"
        )
        connection.execute("INSERT INTO new_users VALUES ('old-1', 'kept text', 2, NULL, '2026-01-01 00:00:00')")
    store = Storage(f"sqlite:///{db}")
    store.create_schema()
    user, _ = store.lookup("old-1")
    assert user is not None and (user.text, user.persona, user.text_hash) == ("kept text", 2, None)
    store.close()


# -- the file on disk ------------------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask (022), under which files are world-readable unless made otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("open_umask")
def test_database_files_are_owner_only_and_commits_are_synced(run_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "new" / "serve.sqlite"
    with keyed_client(create_app(sqlite_settings(run_dir, db))) as client:
        assert client.post("/users", json={"items": SPACE[:1]}).status_code == 201
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            assert path.exists() and path.stat().st_mode & 0o777 == 0o600, path
        assert client.app.state.service.storage.synchronous() == "2"  # type: ignore[attr-defined] # FULL
    # A file made world-readable earlier is tightened when the service opens it.
    older = tmp_path / "older.sqlite"
    sqlite3.connect(older).close()
    older.chmod(0o644)
    Storage(f"sqlite:///{older}").close()
    assert older.stat().st_mode & 0o777 == 0o600


# -- lost updates ----------------------------------------------------------------------------------------


def burst(url: str, uid: str, items: list[str], headers: dict[str, str]) -> list[int]:
    """Post each item as its own event, all at once from as many threads; the ``events`` of each answer."""
    start = threading.Barrier(len(items))

    def post(item: str) -> int:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            start.wait()
            response = http.post(f"/users/{uid}/events", json={"items": [item]})
            assert response.status_code == 201, response.text
            return int(response.json()["events"])

    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(post, items))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_concurrent_events_burst_leaves_the_persona_of_all_items(
    run_dir: Path, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_database")("burst")
    with (
        ServerProcess(run_dir, database_url=url) as server,
        httpx.Client(base_url=server.url, headers=server.headers) as http,
    ):
        crime_taste = http.post("/users", json={"items": CRIME}).json()["persona"]["group"]
        for trial in range(3):
            start = SPACE[trial % 6 : trial % 6 + 1] + SPACE[(trial + 1) % 6 : (trial + 1) % 6 + 1]
            uid = http.post("/users", json={"items": start}).json()["user_id"]
            counts = burst(server.url, uid, CRIME, server.headers)
            # Each answer counts its own write and every one committed before it: 3, 4, ..., 8 in some order.
            assert sorted(counts) == list(range(3, 9)), (trial, counts)
            at_once = http.post("/users", json={"items": start + CRIME}).json()["persona"]["group"]
            assert at_once == crime_taste
            stored = http.get(f"/users/{uid}/persona").json()
            assert (stored["events"], stored["persona"]["group"]) == (8, at_once), trial


# -- idempotency -----------------------------------------------------------------------------------------


def test_a_replayed_idempotency_key_writes_once(run_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "serve.sqlite"
    with keyed_client(create_app(sqlite_settings(run_dir, db))) as client:
        body = {"text": "space stories", "items": SPACE[:1], "n": 3}
        first = client.post("/users", json=body, headers={"Idempotency-Key": "create-1"})
        again = client.post("/users", json=body, headers={"Idempotency-Key": "create-1"})
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first.headers
        assert rows(db, "SELECT count(*) FROM new_users") == [(1,)]
        uid = first.json()["user_id"]

        events = {"items": SPACE[1:3], "kind": "like"}
        answers = [
            client.post(f"/users/{uid}/events", json=events, headers={"Idempotency-Key": "events-1"}) for _ in range(3)
        ]
        assert [a.json() for a in answers] == [answers[0].json()] * 3 and answers[0].json()["events"] == 3
        assert rows(db, "SELECT count(*) FROM events WHERE user_id = ?", uid) == [(3,)]

        other = client.post(f"/users/{uid}/events", json={"items": SPACE[3:4]}, headers={"Idempotency-Key": "events-1"})
        assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]
        assert "another request" in other.json()["detail"]
        # Without a key, the same body is a new write.
        assert client.post(f"/users/{uid}/events", json=events).json()["events"] == 5

        # The same key from many clients at once: one write.
        def create(_: int) -> str:
            answer = client.post("/users", json={"items": CRIME[:2]}, headers={"Idempotency-Key": "race"})
            assert answer.status_code == 201, answer.text
            return str(answer.json()["user_id"])

        with ThreadPoolExecutor(6) as pool:
            assert len(set(pool.map(create, range(6)))) == 1
        assert rows(db, "SELECT count(*) FROM new_users") == [(2,)]


def test_idempotency_keys_expire(run_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "serve.sqlite"
    with keyed_client(create_app(sqlite_settings(run_dir, db, idempotency_ttl_s=0.001))) as client:
        body, key = {"items": SPACE[:1]}, {"Idempotency-Key": "short-lived"}
        ids = {client.post("/users", json=body, headers=key).json()["user_id"] for _ in range(2)}
        assert len(ids) == 2  # expired at once: the second is a new write
    assert rows(db, "SELECT count(*) FROM idempotency_keys") == [(1,)]  # the expired one was purged


# -- start-up checks, health and outages -----------------------------------------------------------------


def test_a_run_whose_encoder_differs_refuses_to_start_in_one_line(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    # As if the run had been encoded by another MiniLM file than the one installed here.
    manifest["encoder"].update(kind="minilm", name="text=onnx:models/all-minilm@0123456789ab+tok@ba9876543210")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    command = [sys.executable, "-c", "from personas.cli import main; main()", "serve", "--model", str(copy)]
    command += ["--db", f"sqlite:///{tmp_path / 'x.db'}", "--port", str(free_port())]
    # A server that started anyway would run until the timeout: that fails the test too.
    result = subprocess.run(command, capture_output=True, text=True, timeout=90, env={**os.environ, "COLUMNS": "300"})
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "text encoder" in output and "Re-run the pipeline" in output
    assert len(output.strip().splitlines()) == 1, output


def test_an_encoder_failing_on_a_request_is_a_503_without_server_paths(run_dir: Path, tmp_path: Path) -> None:
    from personas.encode import OnnxConfig, OnnxEncoder

    with keyed_client(create_app(sqlite_settings(run_dir, tmp_path / "db.sqlite"))) as client:
        # A real encoder whose model file is gone (deleted or moved after start): it fails naming its path.
        client.app.state.service._encoder = OnnxEncoder(OnnxConfig(model=str(tmp_path / "secret-dir" / "m.onnx")))  # type: ignore[attr-defined]
        failed = client.post("/users", json={"text": "space stories"})
        assert failed.status_code == 503 and failed.json()["error"] == "unavailable"
        assert "secret-dir" not in failed.text and str(tmp_path) not in failed.text
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["checks"]["encoder"]["status"] == "down"
        assert str(tmp_path) not in health.text
        assert rows(tmp_path / "db.sqlite", "SELECT count(*) FROM new_users") == [(0,)]


def test_health_reports_each_dependency(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "run_folder": "ok",
        "encoder": "unused",  # a TF-IDF run places new users' text without a reusable encoder
        "database": "ok",
    }


@pytest.mark.slow
def test_run_users_are_served_while_the_database_is_down(run_dir: Path, own_postgres: PostgresCluster) -> None:
    settings = ServeSettings(model_dir=run_dir, database_url=own_postgres.url)
    with keyed_client(create_app(settings)) as client:
        before = client.get("/users/crime-1/recommendations", params={"n": 5}).json()
        uid = client.post("/users", json={"items": SPACE[:2]}).json()["user_id"]

        own_postgres.stop("fast")  # every connection is closed; what was committed stays
        down = client.get("/users/crime-1/recommendations", params={"n": 5})
        assert down.status_code == 200 and down.json() == before
        assert "database unavailable" in down.headers["Personas-Degraded"]
        persona = client.get("/users/crime-1/persona")
        assert persona.status_code == 200 and persona.json()["events"] is None
        # What only the database knows is unavailable, said plainly.
        assert client.get(f"/users/{uid}/recommendations").status_code == 503
        assert client.post("/users", json={"items": SPACE[:1]}).status_code == 503
        health = client.get("/health")
        assert health.status_code == 503
        checks = health.json()["checks"]
        assert (health.json()["status"], checks["database"]["status"], checks["run_folder"]["status"]) == (
            "degraded",
            "down",
            "ok",
        )

        own_postgres.start()
        assert client.get("/health").status_code == 200
        assert client.get(f"/users/{uid}/recommendations").status_code == 200
