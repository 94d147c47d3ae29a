"""The dashboard of a two-level run in a real headless Chromium: the tree of coarse personas and their fine
sub-personas with sizes and names, and a new user placed at both levels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from personas.api import ServeSettings, create_app
from personas.api.testing import UNLIMITED, ServerThread, key_headers, write_tree_run
from personas.pipeline import load_run

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def tree_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree_run(tmp_path_factory.mktemp("web-tree") / "run")


@pytest.fixture
def tree_database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tree.sqlite'}"


@pytest.fixture
def tree_url(tree_dir: Path, tree_database: str) -> Iterator[str]:
    """The local demo: reads open, writes with a key typed into the dashboard."""
    app = create_app(
        ServeSettings(model_dir=tree_dir, database_url=tree_database, allow_anonymous_read=True, **UNLIMITED)
    )
    with ServerThread(app) as server:
        yield server.url


def test_the_dashboard_shows_the_tree_and_places_a_new_user_at_both_levels(
    tree_dir: Path, tree_url: str, tree_database: str, watched_page: Any
) -> None:
    run = load_run(tree_dir)
    page, problems = watched_page((tree_url,))
    page.goto(tree_url + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)

    assert page.locator("#tree-panel").is_visible()
    roots = page.locator("#tree > li.tree-coarse")
    assert roots.count() == len(run.coarse_personas) == 2
    for i, coarse in enumerate(run.coarse_personas):
        root = roots.nth(i)
        head = root.locator(".tree-head").inner_text()
        assert coarse.display_name in head and f"{coarse.size} users" in head and "stability 1.00" in head
        leaves = root.locator("li.tree-fine")
        assert [int(str(leaves.nth(j).get_attribute("data-group"))) for j in range(leaves.count())] == coarse.children
        for j, group in enumerate(coarse.children):
            fine = run.personas[group]
            assert f"{fine.group}. {fine.display_name}" in leaves.nth(j).inner_text()
            assert f"{fine.size} users" in leaves.nth(j).inner_text()
    # each fine card says which coarse persona it belongs to
    cards = page.locator(".persona-card")
    assert cards.count() == len(run.personas) == 4
    for persona in run.personas:
        parent = run.coarse_personas[persona.parent or 0]
        card = page.locator(f".persona-card[data-group='{persona.group}']")
        assert f"in {parent.display_name}" in card.inner_text()

    # A new user who took two heist films: the heists persona, inside the crime persona (a write: needs a key).
    page.fill("#api-key", key_headers(tree_database, "read,write")["Authorization"].removeprefix("Bearer "))
    page.click("#key-form button")
    page.fill("#new-items", "sku-vault-raid, sku-bank-job")
    page.click("#new-user-form button")
    page.wait_for_selector("#new-user-result .recommendations li", timeout=20_000)
    users = run.users.set_index("user_id")
    heists = run.personas[int(users.loc["heists-0", "persona"])]
    crime = run.coarse_personas[heists.parent or 0]
    assert f"{heists.group}. {heists.display_name}" in page.locator("#new-user-result .persona-line").inner_text()
    assert crime.display_name in page.locator("#new-user-result .coarse-line").inner_text()
    assert httpx.get(tree_url + "/health").json()["new_users"] == 1
    assert [p for p in problems if "404" not in p] == []  # the browser asks for a favicon
    page.screenshot(path=str(tree_dir.parent / "dashboard-tree.png"), full_page=True)
    page.close()
