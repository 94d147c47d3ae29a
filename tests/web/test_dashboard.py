"""The dashboard in a real headless Chromium: map and cards render offline, a user search and a new user's
text both show a persona and recommendations that come from the API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser


def test_dashboard_map_cards_search_and_new_user(dashboard_url: str, dashboard_key: str, watched_page: Any) -> None:
    page, problems = watched_page((dashboard_url,))
    page.goto(dashboard_url + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)

    assert page.locator(".js-plotly-plot .scatterlayer .point").count() == 36  # every user of the run
    cards = page.locator(".persona-card")
    assert cards.count() == 3
    api_personas = httpx.get(dashboard_url + "/personas").json()["items"]
    assert [cards.nth(i).locator("h3").inner_text() for i in range(3)] == [
        f"{p['group']}. {p['display_name']}" for p in api_personas
    ]
    page.wait_for_function("document.querySelectorAll('.persona-card ol li').length >= 3", timeout=20_000)

    # Search for a user of the run: their persona and the API's recommendations for them.
    page.fill("#user-id", "space-0")
    page.click("#user-form button")
    page.wait_for_selector("#user-result .recommendations li", timeout=20_000)
    expected = httpx.get(dashboard_url + "/users/space-0/recommendations", params={"n": 10}).json()
    shown = page.locator("#user-result .recommendations li")
    assert [shown.nth(i).get_attribute("data-item-id") for i in range(shown.count())] == [
        r["item_id"] for r in expected["items"]
    ]
    persona = httpx.get(dashboard_url + "/users/space-0/persona").json()["persona"]
    assert persona["display_name"] in page.locator("#user-result .persona-line").inner_text()

    # A new user's text (a write: the page sends the key typed in): stored, placed in the crime persona.
    page.fill("#api-key", dashboard_key)
    page.click("#key-form button")
    page.fill("#new-text", "I mostly enjoy crime stories and crime films")
    page.click("#new-user-form button")
    page.wait_for_selector("#new-user-result .recommendations li", timeout=20_000)
    line = page.locator("#new-user-result .persona-line").inner_text()
    crime = next(p for p in api_personas if any("crime" in k for k in p["keywords"]))
    assert crime["display_name"] in line
    assert page.locator("#new-user-result .recommendations li").count() == 10
    assert httpx.get(dashboard_url + "/health").json()["new_users"] == 1

    # An unknown user shows the API's message instead of failing silently.
    page.fill("#user-id", "nobody")
    page.click("#user-form button")
    page.wait_for_selector("#user-result .error", timeout=20_000)
    assert "nobody" in page.locator("#user-result .error").inner_text()
    assert [p for p in problems if "404" not in p] == []
    page.close()


def test_without_anonymous_reads_the_page_asks_for_a_key_and_then_loads(
    locked_dashboard_url: str, dashboard_key: str, watched_page: Any
) -> None:
    page, problems = watched_page((locked_dashboard_url,))
    page.goto(locked_dashboard_url + "/")
    page.wait_for_selector("#summary .error", timeout=30_000)
    assert "needs an API key" in page.locator("#summary .error").inner_text()
    page.fill("#api-key", dashboard_key)
    page.click("#key-form button")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    assert page.locator(".persona-card").count() == 3
    assert page.input_value("#api-key") == ""  # the key is not left on screen
    # The refused requests before the key, and the favicon.
    assert [p for p in problems if "401" not in p and "404" not in p] == []
    page.close()


def test_items_without_titles_show_their_ids(review_dashboard_url: str, watched_page: Any) -> None:
    page, problems = watched_page((review_dashboard_url,))
    page.goto(review_dashboard_url + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    assert (
        page.get_attribute("#user-id", "placeholder")
        == "user id, e.g. " + httpx.get(review_dashboard_url + "/map").json()["user_id"][0]
    )
    page.fill("#user-id", "coffee-fan-3-0")
    page.click("#user-form button")
    page.wait_for_selector("#user-result .recommendations li", timeout=20_000)
    lines = page.locator("#user-result .recommendations li")
    assert lines.count() == 10
    for i in range(lines.count()):
        item_id = lines.nth(i).get_attribute("data-item-id")
        assert lines.nth(i).inner_text().startswith(item_id + " ")  # never a line that reads only a reason
    page.wait_for_function("document.querySelectorAll('.persona-card ol').length === 3", timeout=20_000)
    card_items = page.locator(".persona-card ol li")  # distinctive items, where a persona has some
    assert all(
        card_items.nth(i).inner_text().startswith(str(card_items.nth(i).get_attribute("data-item-id")))
        for i in range(card_items.count())
    )
    assert [p for p in problems if "404" not in p] == []  # the browser asks for a favicon
    page.close()
