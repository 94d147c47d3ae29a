"""`personas serve --workers 2`: two processes on one port and one SQLite (WAL) database; a write answered by
one worker is seen by reads the other answers; SIGTERM stops both cleanly."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from personas.api.testing import ServerProcess

pytestmark = pytest.mark.slow


def _workers(parent: int) -> list[int]:
    """The worker processes of a `personas serve --workers` process (spawned children, not its helpers)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _fresh(server: ServerProcess) -> httpx.Client:
    # A new connection per request: the kernel hands each to whichever worker accepts first.
    return httpx.Client(base_url=server.url, headers=server.headers, limits=httpx.Limits(max_keepalive_connections=0))


def test_two_workers_share_the_database_and_stop_cleanly(run_dir: Path, tmp_path: Path) -> None:
    args = ("--no-access-log", "--log-level", "warning", "--workers", "2")
    server = ServerProcess(run_dir, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", extra_args=args)
    with server, _fresh(server) as http:
        assert server.process is not None
        workers = _workers(server.process.pid)
        assert len(workers) == 2, server.log()
        for _ in range(40):  # both workers up (each answers /health once it has loaded the run)
            assert http.get("/health").status_code == 200
        before = {pid: _cpu_seconds(pid) for pid in workers}
        run_users = http.get("/map").json()["user_id"]
        for round_ in range(30):
            created = http.post("/users", json={"items": [], "text": "space stories and robots", "n": 3})
            assert created.status_code == 201, created.text
            user_id = created.json()["user_id"]
            taken = created.json()["recommendations"]["items"][0]["item_id"]
            # Whichever worker answers, the user and their events written by the other are there.
            assert http.get(f"/users/{user_id}/persona").status_code == 200
            assert http.post(f"/users/{user_id}/events", json={"items": [taken]}).json()["events"] == 1
            for _ in range(3):
                after = http.get(f"/users/{user_id}/recommendations", params={"n": 3})
                assert after.status_code == 200 and taken not in [i["item_id"] for i in after.json()["items"]]
            # A run user's events too (their precomputed list is not served once they have events).
            run_user = run_users[round_]
            recs = http.get(f"/users/{run_user}/recommendations", params={"n": 2}).json()["items"]
            assert http.post(f"/users/{run_user}/events", json={"items": [recs[0]["item_id"]]}).status_code == 201
            for _ in range(3):
                again = http.get(f"/users/{run_user}/recommendations", params={"n": 2}).json()["items"]
                assert recs[0]["item_id"] not in [i["item_id"] for i in again], round_
        used = {pid: _cpu_seconds(pid) - before[pid] for pid in workers}
        assert all(seconds > 0 for seconds in used.values()), used  # both answered some of the requests
        log_before_exit = server.log()
    assert server.process.returncode == 0, log_before_exit
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    assert "Traceback" not in log_before_exit
