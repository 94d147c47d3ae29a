"""The report's persona cards show the facts behind each name, with their numbers (issue 17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from personas.pipeline import load_run

pytestmark = pytest.mark.browser


def test_report_cards_show_the_numbers_behind_each_name(
    shop: Path, tmp_path: Path, make_config: Any, run_pipeline: Any, watched_page: Any
) -> None:
    run_pipeline(make_config(shop, report="true"), tmp_path)
    artefact = load_run(shop / "run")
    page, problems = watched_page(("file:", "data:", "blob:"))
    page.goto((shop / "run" / "report.html").as_uri())
    page.wait_for_selector(".persona-card", timeout=20_000)
    assert any(p.name_facts for p in artefact.personas)
    for persona in artefact.personas:
        card = page.locator(f".persona-card[data-group='{persona.group}']")
        assert persona.display_name in card.locator("h3").inner_text()
        assert f"name from: {persona.name_source}" in card.inner_text()
        for fact in persona.name_facts:
            assert fact.evidence in card.locator(".name-facts").inner_text()
    assert problems == []
    page.close()
