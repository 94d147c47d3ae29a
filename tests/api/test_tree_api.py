"""The persona tree over HTTP: GET /personas/tree, and users (of the run or new) placed at both levels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from personas.api import ServeSettings, create_app
from personas.api.testing import UNLIMITED, item_id, keyed_client, write_tree_run
from personas.pipeline import RunArtefact, load_run


@pytest.fixture(scope="module")
def tree_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree_run(tmp_path_factory.mktemp("serve-tree") / "run")


@pytest.fixture
def tree_client(tree_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = ServeSettings(model_dir=tree_dir, database_url=f"sqlite:///{tmp_path / 'tree.sqlite'}", **UNLIMITED)
    with keyed_client(create_app(settings)) as client:
        yield client


def fine_of(run: RunArtefact, user: str) -> int:
    return int(run.users.set_index("user_id").loc[user, "persona"])


def test_the_tree_lists_coarse_personas_with_their_fine_ones(tree_client: TestClient, tree_dir: Path) -> None:
    run = load_run(tree_dir)
    tree = tree_client.get("/personas/tree").json()
    assert tree["levels"] == 2
    assert [r["persona"]["group"] for r in tree["roots"]] == [c.group for c in run.coarse_personas]
    for root, coarse in zip(tree["roots"], run.coarse_personas, strict=True):
        assert root["persona"]["display_name"] == coarse.display_name and root["persona"]["size"] == coarse.size
        assert [c["group"] for c in root["children"]] == coarse.children
        assert all(c["parent"] == coarse.group for c in root["children"])
        assert root["persona"]["stability"] == pytest.approx(1.0) and root["persona"]["unstable"] is False
    page = tree_client.get("/personas").json()["items"]
    assert [p["parent"] for p in page] == [p.parent for p in run.personas]


def test_users_are_placed_at_both_levels(tree_client: TestClient, tree_dir: Path) -> None:
    run = load_run(tree_dir)
    robots = fine_of(run, "robots-0")
    known = tree_client.get("/users/robots-0/persona").json()
    assert known["persona"]["group"] == robots
    assert known["coarse_persona"]["group"] == run.coarse_of(robots) == run.coarse_of(fine_of(run, "aliens-0"))
    created = tree_client.post("/users", json={"items": [item_id("Vault Raid"), item_id("Bank Job")], "n": 3})
    assert created.status_code == 201
    body = created.json()
    heists = fine_of(run, "heists-0")
    assert body["persona"]["group"] == heists
    assert body["coarse_persona"]["group"] == run.coarse_of(heists)
    assert body["coarse_persona"]["display_name"] == run.coarse_personas[run.coarse_of(heists) or 0].display_name
    stored = tree_client.get(f"/users/{body['user_id']}/persona").json()
    assert stored["coarse_persona"] == body["coarse_persona"]


def test_a_one_level_run_has_a_flat_tree_and_no_coarse_persona(client: TestClient, artefact: RunArtefact) -> None:
    tree = client.get("/personas/tree").json()
    assert tree["levels"] == 1
    assert [r["persona"]["group"] for r in tree["roots"]] == [p.group for p in artefact.personas]
    assert all(r["children"] == [] for r in tree["roots"])
    body = client.post("/users", json={"text": "I mostly enjoy space stories", "n": 3}).json()
    assert body["persona"] is not None and body["coarse_persona"] is None
