"""The service on a run shaped like product reviews (one review per user, products without titles): events
move a user's list toward what they took, reasons name what produced each item, and the dashboard shows item
ids and examples from this run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from personas.api import ServeSettings, create_app
from personas.api.testing import key_headers, write_review_run
from personas.recommend import NO_REASON


@pytest.fixture(scope="module")
def review_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_review_run(tmp_path_factory.mktemp("reviews") / "run")


def _client(run: Path, tmp_path: Path, model: str | None = None) -> TestClient:
    name = model or "default"
    db = f"sqlite:///{tmp_path / name}.sqlite"
    app = create_app(ServeSettings(model_dir=run, database_url=db, model_name=model, rate_limit_per_key=""))
    return TestClient(app, base_url="http://localhost", headers=key_headers(db))


@pytest.fixture
def client(review_run: Path, tmp_path: Path) -> Iterator[TestClient]:
    with _client(review_run, tmp_path) as test_client:
        yield test_client


def _kinds(body: dict) -> list[str]:
    return [item["item_id"].split("-")[0] for item in body["items"]]


def test_two_coffee_purchases_keep_coffee_on_top(client: TestClient) -> None:
    created = client.post("/users", json={"text": "I drink coffee, dark roast coffee beans", "n": 5}).json()
    uid = created["user_id"]
    response = client.post(f"/users/{uid}/events", json={"items": ["coffee-00", "coffee-01"], "kind": "purchase"})
    assert response.status_code == 201
    coffee_persona = response.json()["persona"]  # placed by what they bought
    assert coffee_persona is not None
    after = client.get(f"/users/{uid}/recommendations", params={"n": 5}).json()
    assert after["route"] == "few" and after["history"] == 2
    assert _kinds(after) == ["coffee"] * 5
    assert {i["item_id"] for i in after["items"]}.isdisjoint({"coffee-00", "coffee-01"})
    # The group is what ranked them (no two products were ever taken together): the reason says so.
    assert all(i["reason"]["persona"] == coffee_persona for i in after["items"])


def test_a_reviewer_of_the_run_who_buys_coffee_gets_coffee(client: TestClient) -> None:
    before = client.get("/users/coffee-fan-3-0/recommendations", params={"n": 5}).json()
    assert _kinds(before) == ["coffee"] * 5
    client.post("/users/coffee-fan-3-0/events", json={"items": ["coffee-00", "coffee-01"], "kind": "purchase"})
    after = client.get("/users/coffee-fan-3-0/recommendations", params={"n": 5}).json()
    assert after["history"] == 3 and _kinds(after) == ["coffee"] * 5


def test_a_list_no_part_ranks_is_not_credited_to_a_persona(review_run: Path, tmp_path: Path) -> None:
    # EASE learns nothing where no two items were taken together: its list is a fixed order, and says so.
    with _client(review_run, tmp_path, "ease") as ease:
        body = ease.get("/users/coffee-fan-3-0/recommendations", params={"n": 5}).json()
    assert [i["reason"] for i in body["items"]] == [{"persona": None, "because_of": None, "text": NO_REASON}] * 5


def test_the_dashboard_takes_its_examples_from_the_run(client: TestClient, review_run: Path) -> None:
    page = client.get("/").text
    users = pd.read_parquet(review_run / "users.parquet")["user_id"].astype(str).tolist()
    items = pd.read_parquet(review_run / "items.parquet")["item_id"].astype(str).tolist()
    placeholders = dict(re.findall(r'id="([a-z-]+)"[^>]*?placeholder="([^"]*)"', page, flags=re.S))
    assert "196" not in page and "space operas" not in page
    user_example = placeholders["user-id"].removeprefix("user id, e.g. ")
    assert user_example in users
    item_examples = placeholders["new-items"].split("e.g. ")[1].split(", ")
    assert item_examples and set(item_examples) <= set(items)
    assert any(word in placeholders["new-text"] for word in ("coffee", "cat", "sauce"))
