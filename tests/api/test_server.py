"""End to end: `personas serve` in its own process on a loopback port, every endpoint over real HTTP, the
real PostgreSQL behind it, and what was stored survives a restart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from personas.api.testing import ServerProcess, item_id

pytestmark = pytest.mark.slow


def test_every_endpoint_over_http_and_users_survive_a_restart(
    run_dir: Path, postgres_database: Callable[[str], str]
) -> None:
    postgres_url = postgres_database("e2e")
    with (
        ServerProcess(run_dir, database_url=postgres_url) as server,
        httpx.Client(base_url=server.url, headers=server.headers) as http,
    ):
        health = http.get("/health").json()
        assert health["database"] == "postgresql" and health["personas"] == 3

        personas = http.get("/personas", params={"limit": 2}).json()
        assert personas["total"] == 3 and len(personas["items"]) == 2
        detail = http.get("/personas/0").json()
        assert detail["card"]["group"] == 0 and detail["members"]

        member = detail["members"][0]["user_id"]
        assert http.get(f"/users/{member}/persona").json()["persona"]["group"] == 0
        recs = http.get(f"/users/{member}/recommendations", params={"n": 3}).json()
        assert len(recs["items"]) == 3 and all(r["reason"]["text"] for r in recs["items"])

        created = http.post("/users", json={"text": "crime stories, heists and detectives", "n": 4})
        assert created.status_code == 201
        uid = created.json()["user_id"]
        first = created.json()["recommendations"]["items"][0]["item_id"]
        events = http.post(f"/users/{uid}/events", json={"items": [first], "kind": "view"})
        assert events.status_code == 201 and events.json()["events"] == 1
        after = http.get(f"/users/{uid}/recommendations", params={"n": 4}).json()
        assert first not in {r["item_id"] for r in after["items"]}

        item = http.get(f"/items/{item_id('Bank Job')}").json()
        assert item["title"] == "Bank Job"
        assert [i["title"] for i in http.get("/items", params={"search": "bank"}).json()["items"]] == ["Bank Job"]
        assert len(http.get("/map").json()["user_id"]) == 36

        missing = http.get("/users/nobody/recommendations")
        assert missing.status_code == 404 and missing.json()["id"] == "nobody"
        broken = http.post("/users", content=b"{", headers={"content-type": "application/json"})
        assert broken.status_code == 422 and broken.json()["fields"] == ["body"]
        assert http.get("/").status_code == 200
        persona_of_uid = http.get(f"/users/{uid}/persona").json()

    # A new process on the same database remembers the user, their persona and their events.
    with (
        ServerProcess(run_dir, database_url=postgres_url) as server,
        httpx.Client(base_url=server.url, headers=server.headers) as http,
    ):
        again = http.get(f"/users/{uid}/persona").json()
        assert again == {**persona_of_uid, "events": 1}
        assert http.get("/health").json()["new_users"] == 1
