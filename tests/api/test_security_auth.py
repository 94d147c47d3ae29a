"""Access control of the service (issue 18): API keys with scopes, users reached only by the key that made them,
rate limits. Each test asks what an outsider tried: no key, a wrong key, the wrong scope, someone else's
user, a burst."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from personas.api import ServeSettings, create_app
from personas.api.auth import create_key, revoke_key
from personas.api.testing import ServerProcess
from personas.cli import app as cli

NEW_USER = {"text": "I mostly enjoy crime stories and heists", "n": 3}


@pytest.fixture
def make_app(run_dir: Path, tmp_path: Path) -> Callable[..., Any]:
    """The real app over the example run and a fresh SQLite file; settings overridable per test."""

    def make(**overrides: Any) -> Any:
        values: dict[str, Any] = {
            "model_dir": run_dir,
            "database_url": f"sqlite:///{tmp_path / 'auth.sqlite'}",
            "rate_limit_per_key": "",
            "rate_limit_per_address": "",
            **overrides,
        }
        return create_app(ServeSettings(**values))

    return make


@pytest.fixture
def app(make_app: Callable[..., Any]) -> Any:
    return make_app()


@pytest.fixture
def http(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://localhost") as client:
        yield client


def key(app: Any, scopes: str, *, run_users: bool = False) -> dict[str, str]:
    _, secret = create_key(app.state.service.storage, scopes, name=scopes, run_users=run_users)
    return {"Authorization": f"Bearer {secret}"}


def test_no_key_gets_401_on_every_data_endpoint(http: TestClient) -> None:
    for method, path, body in [
        ("GET", "/personas", None),
        ("GET", "/personas/0", None),
        ("GET", "/map", None),
        ("GET", "/items", None),
        ("GET", "/users/space-0/persona", None),
        ("GET", "/users/space-0/recommendations", None),
        ("POST", "/users", NEW_USER),
        ("POST", "/users/space-0/events", {"items": ["sku-bank-job"]}),
    ]:
        response = http.request(method, path, json=body)
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"] == "unauthorized" and "personas keys create" in response.json()["detail"]
    assert http.get("/health").status_code == 200  # liveness stays open for probes
    assert http.get("/health").json()["events"] == 0  # the refused event was not stored


def test_a_wrong_or_malformed_key_gets_401(app: Any, http: TestClient) -> None:
    _, secret = create_key(app.state.service.storage, "read")
    assert http.get("/personas", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    wrong_secret = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")  # right key id, wrong secret
    for bad in [wrong_secret, "pk_000000000000_" + "A" * 43, "nonsense", ""]:
        response = http.get("/personas", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, bad
    # The other header works too, and the same way.
    assert http.get("/personas", headers={"X-API-Key": secret}).status_code == 200
    assert http.get("/personas", headers={"X-API-Key": wrong_secret}).status_code == 401


def test_guessing_keys_is_slowed_down_to_ten_a_minute(app: Any, http: TestClient) -> None:
    known, fresh = key(app, "read"), key(app, "read")
    assert http.get("/personas", headers=known).status_code == 200
    real_id = fresh["Authorization"].split("_")[1]
    guesses = [f"Bearer pk_{real_id}_{i:043d}" for i in range(11)]  # each one costs the server a hash
    statuses = [http.get("/personas", headers={"Authorization": g}).status_code for g in guesses]
    assert statuses == [401] * 10 + [429]
    assert http.get("/personas", headers=fresh).status_code == 429  # not checked either, until the minute is over
    assert http.get("/personas", headers=known).status_code == 200  # a key verified before goes on


def test_a_revoked_key_stops_working(make_app: Callable[..., Any]) -> None:
    app = make_app(key_recheck_seconds=0.2)
    stored, secret = create_key(app.state.service.storage, "read")
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(app, base_url="http://localhost") as http:
        assert http.get("/personas", headers=headers).status_code == 200
        revoke_key(app.state.service.storage, stored.key_id)
        time.sleep(0.3)  # past key_recheck_seconds: the remembered verdict is checked again
        assert http.get("/personas", headers=headers).status_code == 401


def test_the_wrong_scope_gets_403(app: Any, http: TestClient) -> None:
    reader, writer = key(app, "read"), key(app, "write")
    refused = http.post("/users", json=NEW_USER, headers=reader)
    assert refused.status_code == 403 and "'write' scope" in refused.json()["detail"]
    assert http.get("/personas", headers=writer).status_code == 403
    assert http.get("/health").json()["new_users"] == 0
    assert http.post("/users", json=NEW_USER, headers=writer).status_code == 201


def test_another_clients_user_is_not_found(app: Any, http: TestClient) -> None:
    alice, bob, admin = key(app, "read,write"), key(app, "read,write"), key(app, "admin")
    uid = http.post("/users", json=NEW_USER, headers=alice).json()["user_id"]
    for path in (f"/users/{uid}/persona", f"/users/{uid}/recommendations"):
        assert http.get(path, headers=alice).status_code == 200
        theirs = http.get(path, headers=bob)
        # The same answer as for a user that does not exist: nothing tells bob that uid is someone's.
        nobody = http.get(path.replace(uid, "new-0000000000000000"), headers=bob)
        assert theirs.status_code == nobody.status_code == 404
        assert theirs.json()["detail"] == nobody.json()["detail"].replace("new-0000000000000000", uid)
        assert http.get(path, headers=admin).status_code == 200
    refused = http.post(f"/users/{uid}/events", json={"items": ["sku-bank-job"]}, headers=bob)
    assert refused.status_code == 404
    assert http.get(f"/users/{uid}/persona", headers=alice).json()["events"] == 0  # bob's event was not stored
    assert http.post(f"/users/{uid}/events", json={"items": ["sku-bank-job"]}, headers=alice).status_code == 201


def test_run_users_need_admin_or_the_run_users_grant(app: Any, http: TestClient) -> None:
    reader, granted, admin = key(app, "read,write"), key(app, "read,write", run_users=True), key(app, "admin")
    for path in ("/users/space-0/recommendations", "/users/space-0/persona"):
        refused = http.get(path, headers=reader)
        assert refused.status_code == 403 and "--run-users" in refused.json()["detail"]
        assert http.get(path, headers=granted).status_code == 200
        assert http.get(path, headers=admin).status_code == 200
    # Writing to a run user (what changed user 196's recommendations in the issue) needs the same.
    assert http.post("/users/space-0/events", json={"items": ["sku-bank-job"]}, headers=reader).status_code == 403
    assert http.get("/health").json()["events"] == 0


def test_anonymous_reads_only_when_allowed(make_app: Callable[..., Any]) -> None:
    with TestClient(make_app(allow_anonymous_read=True), base_url="http://localhost") as http:
        assert http.get("/personas").status_code == 200
        assert http.get("/users/space-0/recommendations").status_code == 200  # the local demo's dashboard
        refused = http.post("/users", json=NEW_USER)
        assert refused.status_code == 403 and "'write' scope" in refused.json()["detail"]
    with TestClient(make_app(), base_url="http://localhost") as http:
        assert http.get("/users/space-0/recommendations").status_code == 401


def test_over_the_rate_limit_gets_429_with_retry_after(make_app: Callable[..., Any]) -> None:
    app = make_app(rate_limit_per_key="3/minute", rate_limit_per_address="8/minute")
    first, second = key(app, "read"), key(app, "read")
    with TestClient(app, base_url="http://localhost") as http:
        answers = [http.get("/personas", headers=first) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["ratelimit-remaining"] for a in answers[:3]] == ["2", "1", "0"]
        assert answers[0].headers["ratelimit-limit"] == "3"
        assert "3;w=60" in answers[0].headers["ratelimit-policy"]
        limited = answers[3]
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["error"] == "rate_limited" and "Retry in" in limited.json()["detail"]
        # The limit is per key: another key from the same address goes on, until the address's limit.
        more = [http.get("/personas", headers=second).status_code for _ in range(5)]
        assert more == [200, 200, 200, 429, 429]
        # 4 + 5 requests from one address: over 8/minute, whatever the key; requests without one count too.
        assert http.get("/personas").status_code == 429
        assert http.get("/personas").headers["retry-after"]


def test_keys_are_stored_as_argon2_hashes_only(app: Any, tmp_path: Path) -> None:
    _, secret = create_key(app.state.service.storage, "admin")
    with sqlite3.connect(tmp_path / "auth.sqlite") as db:
        rows = db.execute("SELECT key_id, hash FROM api_keys").fetchall()
    assert len(rows) == 1 and rows[0][1].startswith("$argon2id$") and secret not in rows[0][1]
    assert secret.split("_", 2)[2] not in (tmp_path / "auth.sqlite").read_bytes().decode("latin-1")


def test_the_keys_command_creates_lists_and_revokes(make_app: Callable[..., Any], tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'auth.sqlite'}"
    runner = CliRunner()
    created = runner.invoke(cli, ["keys", "create", "--scope", "read,write", "--name", "shop", "--db", db])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[-1]
    listed = runner.invoke(cli, ["keys", "list", "--db", db])
    key_id = secret.split("_")[1]
    assert key_id in listed.stdout and "shop" in listed.stdout and secret not in listed.stdout
    with TestClient(make_app(key_recheck_seconds=0), base_url="http://localhost") as http:
        assert http.post("/users", json=NEW_USER, headers={"X-API-Key": secret}).status_code == 201
        assert runner.invoke(cli, ["keys", "revoke", key_id, "--db", db]).exit_code == 0
        assert http.get("/personas", headers={"X-API-Key": secret}).status_code == 401
    unknown = runner.invoke(cli, ["keys", "revoke", "nope", "--db", db])
    assert unknown.exit_code == 1 and "keys list" in unknown.output
    bad = runner.invoke(cli, ["keys", "create", "--scope", "root", "--db", db])
    assert bad.exit_code == 1 and "Got 'root' instead" in bad.output


def test_a_bad_rate_setting_is_refused_at_start(make_app: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="rate_limit_per_key"):
        make_app(rate_limit_per_key="lots")


@pytest.mark.slow
def test_the_served_process_refuses_without_a_key_and_limits_a_burst(run_dir: Path, tmp_path: Path) -> None:
    """`personas serve` in its own process: 401 without a key, 403 with the wrong scope, 429 in a burst; with
    --allow-anonymous-read, reads without a key."""
    db = f"sqlite:///{tmp_path / 'served.sqlite'}"
    env = {"PERSONAS_SERVE_RATE_LIMIT_PER_KEY": "5/minute"}
    with (
        ServerProcess(run_dir, database_url=db, env=env, rate_limits=True) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        assert http.get("/users/space-0/recommendations").status_code == 401
        reader = {"Authorization": server.headers["Authorization"]}
        statuses = [http.get("/personas", headers=reader).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        assert int(http.get("/personas", headers=reader).headers["retry-after"]) >= 1
    with (
        ServerProcess(run_dir, database_url=db, key_scopes="read") as server,
        httpx.Client(base_url=server.url) as http,
    ):
        assert http.post("/users", json=NEW_USER, headers=server.headers).status_code == 403
    # The local demo: reads without a key (run users too), writes still need one.
    demo = ("--allow-anonymous-read", "--no-access-log", "--log-level", "warning")
    with ServerProcess(run_dir, database_url=db, extra_args=demo, key_scopes=None) as server:
        with httpx.Client(base_url=server.url) as http:
            assert http.get("/users/space-0/recommendations").status_code == 200
            assert http.post("/users", json=NEW_USER).status_code == 403
        assert "Writes need a key" in server.log()


def test_a_keys_concurrent_first_requests_hash_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sixteen requests with the same new key at once (a client's connection pool opening): one argon2 check, the
    others wait for its verdict; a wrong key is still refused each time."""
    from concurrent.futures import ThreadPoolExecutor

    from argon2 import PasswordHasher

    from personas.api import auth
    from personas.api.storage import Storage

    checks: list[str] = []

    class CountingHasher(PasswordHasher):  # the real hasher, counted
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            checks.append(str(password))
            return super().verify(hash, password)

    monkeypatch.setattr(auth, "_HASHER", CountingHasher(time_cost=2, memory_cost=19_456, parallelism=1))
    storage = Storage(f"sqlite:///{tmp_path / 'keys.sqlite'}")
    storage.create_schema()
    stored, secret = create_key(storage, "read")
    verifier = auth.KeyVerifier(storage, recheck_seconds=60)
    with ThreadPoolExecutor(16) as pool:
        callers = list(pool.map(verifier.verify, [secret] * 16))
    assert [c.key_id if c else None for c in callers] == [stored.key_id] * 16
    assert checks == [secret]
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(verifier.verify, [wrong] * 4)) == [None] * 4
    assert checks.count(wrong) == 4  # a wrong key is never remembered: each guess costs a hash
