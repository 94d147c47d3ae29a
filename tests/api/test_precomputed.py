"""Run users' precomputed top-n (api.precomputed): the same answers as the per-request computation, byte for
byte, for every run user and every n, before and after events are posted."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from personas.api import PersonaService, ServeSettings, create_app
from personas.api.auth import create_key
from personas.recommend.base import stable_prefix


@pytest.fixture
def service(settings: ServeSettings) -> Iterator[PersonaService]:
    serving = PersonaService(settings.model_copy(update={"precomputed_n": 8}))
    try:
        yield serving
    finally:
        serving.storage.close()


def present(service: PersonaService, user_id: str, n: int) -> bytes:
    """What the endpoint answered before the lists existed: the per-request computation, serialised."""
    return service.recommendations_of(user_id, n)[0].model_dump_json().encode()


def test_every_run_user_gets_the_per_request_answer_for_every_n(service: PersonaService) -> None:
    assert service.top is not None and service.top.depth == 8
    service.top.fill_all()
    assert service.top.ready.all()
    served_from_lists = 0
    for user_id in service.user_ids.tolist():
        for n in (1, 2, 3, 5, 8, 9, 20):  # below, at and above the depth (20: the server's max_n)
            row = service.model_row[user_id]
            served_from_lists += service.top.answer(row, n) is not None
            assert service.recommendations_json(user_id, n) == (present(service, user_id, n), False), (user_id, n)
    # The lists answer every n up to the depth here (no ties, prefixes stable); the rest took the present path.
    assert served_from_lists == len(service.user_ids) * 5


def test_answers_after_events_are_those_of_the_per_request_path(service: PersonaService) -> None:
    """A run user with events since the run is recomputed as before (history grows, taken items are gone);
    a new user's events change their results as before. Other users still get their lists."""
    users = service.user_ids.tolist()
    for user_id in users[::5]:
        first = service.recommendations_json(user_id, 5)[0]
        top_item = service.recommendations_of(user_id, 5)[0].items[0].item_id
        service.add_events(user_id, [top_item], "interaction")
        after = service.recommendations_json(user_id, 5)[0]
        assert after != first and top_item not in [item["item_id"] for item in json.loads(after)["items"]]
    for user_id in users:
        for n in (1, 5, 8):
            assert service.recommendations_json(user_id, n)[0] == present(service, user_id, n), (user_id, n)
    # A new user: the per-request path, changed by their events as before.
    new = service.create_user("I mostly enjoy space stories", [], 5)
    before = service.recommendations_json(new.user_id, 5)[0]
    assert before == present(service, new.user_id, 5)
    service.add_events(new.user_id, [new.recommendations.items[0].item_id], "interaction")
    after = service.recommendations_json(new.user_id, 5)[0]
    assert after == present(service, new.user_id, 5) and after != before


def test_events_for_unknown_items_keep_the_list(service: PersonaService) -> None:
    """Only events for items of the run change an answer (the per-request path ignores the others too)."""
    user_id = service.user_ids[0]
    with service.storage.writing(user_id) as write:
        write.add_events(["not-an-item-of-this-run"])
    assert service.recommendations_json(user_id, 5)[0] == present(service, user_id, 5)


def test_answers_asked_again_come_from_the_kept_bodies_within_their_budget(settings: ServeSettings) -> None:
    """A run user's answer, once built from their list, is kept and served again byte for byte; the bodies kept
    never exceed body_cache_bytes (0: none), and answers beyond it are still the per-request ones."""
    for budget in (0, 3000, 32 * 2**20):
        serving = PersonaService(settings.model_copy(update={"precomputed_n": 8, "body_cache_bytes": budget}))
        try:
            users = serving.user_ids.tolist()[:6]
            first = [serving.recommendations_json(u, 5)[0] for u in users]
            again = [serving.recommendations_json(u, 5)[0] for u in users]
            assert first == again == [present(serving, u, 5) for u in users]
            kept = serving._bodies
            assert sum(map(len, kept.values())) <= budget
            owners = {(serving.model_row[u], 5): body for u, body in zip(users, first, strict=True)}
            assert all(owners[key] == body for key, body in kept.items())
            # none; some (this budget holds one or two of these bodies); all
            expected = (
                len(kept) == 0 if budget == 0 else 0 < len(kept) < len(users) if budget < 2**20 else len(kept) == 6
            )
            assert expected, (budget, len(kept), [len(b) for b in first])
        finally:
            serving.storage.close()


def test_precomputing_can_be_turned_off(settings: ServeSettings) -> None:
    serving = PersonaService(settings.model_copy(update={"precomputed_n": 0}))
    try:
        assert serving.top is None
        user_id = serving.user_ids[0]
        assert serving.recommendations_json(user_id, 5)[0] == present(serving, user_id, 5)
    finally:
        serving.storage.close()


def test_the_endpoint_serves_the_lists_and_drops_items_taken_since(settings: ServeSettings) -> None:
    """Over HTTP with the app's lifespan (background filling): the same body as the per-request path, and an
    item posted as an event is gone from the next answer."""
    app = create_app(settings)
    service: PersonaService = app.state.service
    _, key = create_key(service.storage, "admin", name="tests")
    with TestClient(app, base_url="http://localhost", headers={"Authorization": f"Bearer {key}"}) as client:
        user_id = str(service.user_ids[3])
        answer = client.get(f"/users/{user_id}/recommendations", params={"n": 6})
        assert answer.status_code == 200 and answer.content == present(service, user_id, 6)
        assert service.top is not None and service.top.ready[service.model_row[user_id]]
        taken = answer.json()["items"][0]["item_id"]
        assert client.post(f"/users/{user_id}/events", json={"items": [taken]}).status_code == 201
        again = client.get(f"/users/{user_id}/recommendations", params={"n": 6})
        assert taken not in [item["item_id"] for item in again.json()["items"]]
        assert again.content == present(service, user_id, 6)


def test_stable_prefix_finds_where_the_rounding_floor_stops_mattering() -> None:
    """The leading part of an item needs its lift above 1e-9 times the largest lift of the items listed: an item
    whose lift lies between the floor of a shorter list and that of the whole list reads differently there."""
    top = np.array([1.0, 2e-9, 1.0])
    largest = np.array([1.0, 2e-9, 10.0])
    # floors of the prefixes: 1e-9, 1e-9, 1e-8: item 2 leads in the first two items only, not in all three.
    assert stable_prefix(top, largest) == 3
    assert stable_prefix(np.array([3.0, 2.0, 1.0]), np.array([3.0, 2.0, 1.0])) == 1
    assert stable_prefix(np.array([]), np.array([])) == 0
