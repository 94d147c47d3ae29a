"""The API docs (/docs) in a real headless Chromium: Swagger UI renders every operation from local files only,
under the page's Content-Security-Policy (its one inline script allowed by hash)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser


def test_swagger_ui_renders_offline_under_its_csp(dashboard_url: str, watched_page: Any) -> None:
    page, problems = watched_page((dashboard_url,))  # any request elsewhere (a CDN) is a problem
    page.goto(dashboard_url + "/docs")
    page.wait_for_selector(".opblock-summary", timeout=30_000)
    assert page.locator(".opblock-summary").count() >= 10  # every operation of the schema
    assert problems == []  # no blocked script or style, no page error, nothing fetched from outside
