"""The HTML report in a real headless Chromium: no console errors, the map draws, one card per persona."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from personas.pipeline import load_run

pytestmark = pytest.mark.browser


def test_report_opens_offline_with_one_card_per_persona(
    shop: Path, tmp_path: Path, make_config: Any, run_pipeline: Any, watched_page: Any
) -> None:
    run_pipeline(make_config(shop, report="true"), tmp_path)
    artefact = load_run(shop / "run")
    page, problems = watched_page(("file:", "data:", "blob:"))
    page.goto((shop / "run" / "report.html").as_uri())
    page.wait_for_selector(".js-plotly-plot .scatterlayer .point", timeout=20_000)
    cards = page.locator(".persona-card")
    assert cards.count() == len(artefact.personas) == 3
    for persona in artefact.personas:
        assert persona.display_name in page.locator(f".persona-card[data-group='{persona.group}'] h3").inner_text()
    # every user is a point on the map
    assert page.locator(".js-plotly-plot .scatterlayer .point").count() == len(artefact.users)
    assert "NDCG@10" in page.content()
    fidelity = artefact.manifest["name_fidelity"]  # the names' fidelity, said in one visible section
    assert page.locator("#name-fidelity").is_visible()
    assert f"{fidelity['mean_auc']:.2f}" in page.locator("#name-fidelity table").first.inner_text()
    assert problems == []
    page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
    page.close()
