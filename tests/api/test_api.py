"""Every endpoint through the ASGI app (in process), against what the library says for the same run."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from personas.api.testing import TASTES, item_id
from personas.pipeline import RunArtefact

SPACE_ITEMS = {item_id(t) for t in TASTES["space"]}


def persona_of_taste(artefact: RunArtefact, taste: str) -> int:
    """The persona most of a taste's users fell in (the data make the tastes obvious)."""
    users = artefact.users
    members = users[users["user_id"].str.startswith(f"{taste}-")]
    return int(Counter(members["persona"]).most_common(1)[0][0])


def test_health_reports_the_run_and_the_database(client: TestClient, artefact: RunArtefact) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["model"] == "router"
    assert (body["personas"], body["users"], body["items"]) == (3, 36, 18)
    assert body["database"] == "sqlite"
    assert body["new_users"] == body["events"] == 0


def test_personas_are_paginated(client: TestClient, artefact: RunArtefact) -> None:
    first = client.get("/personas", params={"limit": 2}).json()
    rest = client.get("/personas", params={"limit": 2, "offset": 2}).json()
    assert first["total"] == rest["total"] == len(artefact.personas) == 3
    assert [p["group"] for p in first["items"] + rest["items"]] == [0, 1, 2]
    assert client.get("/personas", params={"offset": 10}).json()["items"] == []
    card = first["items"][0]
    assert card["name"] == artefact.personas[0].name
    assert card["size"] == artefact.personas[0].size


def test_persona_detail_lists_members_of_that_persona_only(client: TestClient, artefact: RunArtefact) -> None:
    body = client.get("/personas/1").json()
    assert body["card"]["group"] == 1
    assert body["card"]["keywords"] == [k.model_dump() for k in artefact.personas[1].keywords]
    members = {m["user_id"] for m in body["members"]}
    expected = set(artefact.users.loc[artefact.users["persona"] == 1, "user_id"])
    assert members and members <= expected
    assert len(members) == min(len(expected), 20)


def test_unknown_ids_give_404_naming_the_id(client: TestClient) -> None:
    for path, kind, id_ in [
        ("/personas/7", "persona", "7"),
        ("/users/nobody/persona", "user", "nobody"),
        ("/users/nobody/recommendations", "user", "nobody"),
        ("/items/sku-missing", "item", "sku-missing"),
    ]:
        response = client.get(path)
        assert response.status_code == 404, path
        body = response.json()
        assert (body["error"], body["kind"], body["id"]) == ("not_found", kind, id_)
        assert repr(id_) in body["detail"]


def test_a_run_users_persona_and_map_position(client: TestClient, artefact: RunArtefact) -> None:
    row = artefact.users.iloc[5]
    body = client.get(f"/users/{row.user_id}/persona").json()
    assert body["source"] == "run"
    assert body["persona"]["group"] == row.persona
    assert (body["x"], body["y"]) == pytest.approx((row.x, row.y))
    assert body["events"] == 0


def test_recommendations_for_a_run_user_match_the_saved_model_with_reasons(
    client: TestClient, artefact: RunArtefact
) -> None:
    model = artefact.model("router")
    user = "romance-3"
    expected = model.recommend([user], n=4)
    body = client.get(f"/users/{user}/recommendations", params={"n": 4}).json()
    ids = [r["item_id"] for r in body["items"]]
    assert ids == [str(artefact.items.item_id[i]) for i in expected.ids[0]]
    history = set(model.item_vocab_.ids[model.seen_[model.user_vocab_.row(user)].indices])
    assert not set(ids) & history
    assert body["history"] == len(history) and body["route"] == "warm"
    for rec in body["items"]:
        because = rec["reason"]["because_of"]
        if because is not None:
            assert because["item_id"] in history
            assert because["title"] in rec["reason"]["text"]


def test_n_is_bounded_and_named_when_wrong(client: TestClient) -> None:
    # One naming scheme: the server's limit and the schema's bound both name query.n (body.n in a body).
    too_many = client.get("/users/space-0/recommendations", params={"n": 21})
    assert too_many.status_code == 422 and too_many.json()["fields"] == ["query.n"]
    zero = client.get("/users/space-0/recommendations", params={"n": 0})
    assert zero.status_code == 422 and zero.json()["fields"] == ["query.n"]
    assert client.post("/users", json={"text": "space", "n": 21}).json()["fields"] == ["body.n"]
    assert len(client.get("/users/space-0/recommendations", params={"n": 20}).json()["items"]) <= 20
    # The schema states the same maximum the server enforces (max_n=20 in these tests), in both places.
    schema = client.get("/openapi.json").json()
    (n,) = [p for p in schema["paths"]["/users/{user_id}/recommendations"]["get"]["parameters"] if p["name"] == "n"]
    assert n["schema"]["maximum"] == 20
    assert schema["components"]["schemas"]["NewUserIn"]["properties"]["n"]["maximum"] == 20


def test_the_schema_says_a_new_user_needs_text_or_items(client: TestClient) -> None:
    new_user = client.get("/openapi.json").json()["components"]["schemas"]["NewUserIn"]
    assert {tuple(branch["required"]) for branch in new_user["anyOf"]} == {("text",), ("items",)}
    empty = client.post("/users", json={})
    assert empty.status_code == 422 and empty.json()["fields"] == ["body"]
    assert client.post("/users", json={"items": []}).status_code == 422
    assert client.post("/users", json={"items": [item_id("Paris Love")]}).status_code == 201


def test_new_user_from_text_is_placed_stored_and_recommended(client: TestClient, artefact: RunArtefact) -> None:
    response = client.post("/users", json={"text": "I mostly enjoy space stories", "n": 5})
    assert response.status_code == 201
    body = response.json()
    space = persona_of_taste(artefact, "space")
    assert body["persona"]["group"] == space
    recs = body["recommendations"]
    assert recs["route"] == "cold" and recs["history"] == 0
    assert len(recs["items"]) == 5
    assert sum(r["item_id"] in SPACE_ITEMS for r in recs["items"]) >= 4
    stored = client.get(f"/users/{body['user_id']}/persona").json()
    assert stored["source"] == "api" and stored["persona"]["group"] == space
    again = client.get(f"/users/{body['user_id']}/recommendations", params={"n": 5}).json()
    assert [r["item_id"] for r in again["items"]] == [r["item_id"] for r in recs["items"]]
    assert client.get("/health").json()["new_users"] == 1
    assert client.get(f"/personas/{space}").json()["new_users"] == 1


def test_new_user_from_items_only_takes_the_few_items_route(client: TestClient, artefact: RunArtefact) -> None:
    taken = [item_id("Heist Night"), item_id("Mafia Boss")]
    body = client.post("/users", json={"items": taken, "n": 4}).json()
    assert body["persona"]["group"] == persona_of_taste(artefact, "crime")
    recs = body["recommendations"]
    assert recs["route"] == "few" and recs["history"] == 2
    assert not {r["item_id"] for r in recs["items"]} & set(taken)
    assert any(r["reason"]["because_of"] for r in recs["items"])


def test_events_are_excluded_next_time_and_feed_the_router(client: TestClient) -> None:
    user = client.post("/users", json={"text": "space and robots", "n": 3}).json()
    uid = user["user_id"]
    first = [r["item_id"] for r in user["recommendations"]["items"]]
    response = client.post(f"/users/{uid}/events", json={"items": first[:2], "kind": "like"})
    assert response.status_code == 201
    assert response.json()["recorded"] == 2 and response.json()["events"] == 2
    after = client.get(f"/users/{uid}/recommendations", params={"n": 10}).json()
    assert after["route"] == "few" and after["history"] == 2
    assert not {r["item_id"] for r in after["items"]} & set(first[:2])
    assert client.get(f"/users/{uid}/persona").json()["events"] == 2


def test_events_of_a_run_user_are_not_recommended_back(client: TestClient) -> None:
    before = [r["item_id"] for r in client.get("/users/crime-1/recommendations", params={"n": 3}).json()["items"]]
    assert client.post("/users/crime-1/events", json={"items": before[:1]}).status_code == 201
    after = client.get("/users/crime-1/recommendations", params={"n": 10}).json()
    assert before[0] not in {r["item_id"] for r in after["items"]}
    assert after["history"] == client.get("/users/crime-1/recommendations").json()["history"]


def test_an_unknown_item_stores_nothing(client: TestClient) -> None:
    uid = client.post("/users", json={"text": "romance"}).json()["user_id"]
    response = client.post(f"/users/{uid}/events", json={"items": [item_id("Paris Love"), "sku-nope"]})
    # An unknown id inside the body makes the request invalid (422 naming the field); the URL itself is fine.
    assert response.status_code == 422
    assert response.json()["id"] == "sku-nope" and response.json()["kind"] == "item"
    assert response.json()["fields"] == ["body.items"]
    assert client.get(f"/users/{uid}/persona").json()["events"] == 0
    before = client.get("/health").json()["new_users"]
    assert client.post("/users", json={"text": "x", "items": ["sku-nope"]}).status_code == 422
    assert client.get("/health").json()["new_users"] == before
    assert client.post("/users/nobody/events", json={"items": [item_id("Paris Love")]}).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"\xff\xfe{}", "body"),
        (json.dumps({"text": 5}).encode(), "body.text"),
        (json.dumps({"text": "ok", "colour": "red"}).encode(), "body.colour"),
        (json.dumps({"items": "50"}).encode(), "body.items"),
        (json.dumps({"text": "a\x00b"}).encode(), "body.text"),
        (json.dumps({"text": "x" * 5001}).encode(), "body.text"),
        (json.dumps({"items": [item_id("Bank Job")] * 6}).encode(), "body.items"),
        (json.dumps({"text": "ok", "n": 0}).encode(), "body.n"),
        (json.dumps({}).encode(), "body"),
    ],
)
def test_invalid_bodies_give_422_naming_the_field(client: TestClient, body: bytes, field: str) -> None:
    response = client.post("/users", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["error"] == "validation_error"
    assert field in problem["fields"]
    assert client.get("/health").json()["new_users"] == 0


def test_oversized_bodies_are_refused_before_parsing(client: TestClient) -> None:
    response = client.post("/users", content=b" " * 1_000_001, headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_items_one_and_search(client: TestClient, run_dir: object) -> None:
    item = client.get(f"/items/{item_id('Star Voyage')}").json()
    assert item["title"] == "Star Voyage"
    interactions = pd.read_csv(f"{run_dir}-data/interactions.csv")
    assert item["popularity"] == interactions.loc[interactions["item"] == item_id("Star Voyage"), "user"].nunique()
    found = client.get("/items", params={"search": "LOVE"}).json()
    assert {i["title"] for i in found["items"]} == {"Paris Love", "Love Letters"}
    popularity = [i["popularity"] for i in client.get("/items", params={"limit": 18}).json()["items"]]
    assert popularity == sorted(popularity, reverse=True) and len(popularity) == 18
    assert client.get("/items", params={"search": "zzz"}).json() == {"total": 0, "offset": 0, "limit": 20, "items": []}


def test_map_columns_line_up_with_the_run(client: TestClient, artefact: RunArtefact) -> None:
    body = client.get("/map").json()
    assert body["total"] == 36
    assert len(body["user_id"]) == len(body["persona"]) == len(body["x"]) == len(body["y"]) == 36
    frame = artefact.users.set_index("user_id")
    assert [int(frame.persona[u]) for u in body["user_id"]] == body["persona"]
    sample = client.get("/map", params={"limit": 10}).json()
    assert len(sample["user_id"]) == 10 and set(sample["user_id"]) <= set(body["user_id"])


def test_openapi_lists_every_endpoint_with_examples(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = {(path, method) for path, ops in schema["paths"].items() for method in ops}
    assert paths == {
        ("/health", "get"),
        ("/personas", "get"),
        ("/personas/tree", "get"),
        ("/personas/{group}", "get"),
        ("/map", "get"),
        ("/users/{user_id}/persona", "get"),
        ("/users/{user_id}/recommendations", "get"),
        ("/users", "post"),
        ("/users/{user_id}/events", "post"),
        ("/users/{user_id}", "delete"),
        ("/items", "get"),
        ("/items/{item_id}", "get"),
    }
    components = schema["components"]["schemas"]
    for name in ("NewUserIn", "EventsIn", "RecommendationsOut", "ItemOut", "Health", "ProblemOut", "PersonaBrief"):
        assert components[name].get("examples"), name
    assert "404" in schema["paths"]["/users/{user_id}/recommendations"]["get"]["responses"]


def test_dashboard_and_its_assets_are_served_from_the_package(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "/static/plotly.min.js" in page.text
    assert "cdn" not in page.text.lower()
    plotly = client.get("/static/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    assert client.get("/static/dashboard.js").status_code == 200
