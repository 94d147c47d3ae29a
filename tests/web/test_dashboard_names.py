"""The dashboard's persona cards show the facts behind each name, with their numbers (issue 17)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser


def test_cards_show_the_numbers_behind_each_name(dashboard_url: str, watched_page: Any) -> None:
    page, problems = watched_page((dashboard_url,))
    page.goto(dashboard_url + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    page.wait_for_function("document.querySelectorAll('.persona-card ol').length >= 3", timeout=20_000)
    for persona in httpx.get(dashboard_url + "/personas").json()["items"]:
        card = httpx.get(f"{dashboard_url}/personas/{persona['group']}").json()["card"]
        shown = page.locator(f".persona-card[data-group='{persona['group']}'] .name-facts").inner_text()
        assert f"name from: {card['name_source']}" in shown
        for fact in card["name_facts"]:
            assert f"{fact['label']} {fact['lift']:.1f}x, {round(100 * fact['share'])}% of members" in shown
    assert [p for p in problems if "404" not in p] == []  # the browser asks for a favicon
    page.close()
