"""Name fidelity in a run: measured on the run's names and text space, kept in the manifest, shown in the report,
and the same when a resumed run reads its stages back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from personas.config import Settings
from personas.pipeline import Pipeline, load_config, load_run


def _run(config: Path, tmp_path: Path, *, resume: bool = False) -> Any:
    pipeline = Pipeline(
        load_config(config), settings=Settings(home=tmp_path / "home"), console=Console(quiet=True), resume=resume
    )
    return pipeline.run()


def test_the_run_measures_its_names_and_the_report_shows_it(shop: Path, tmp_path: Path, make_config: Any) -> None:
    config = make_config(shop, report="true", extra="[evaluate]\nenabled = false")
    result = _run(config, tmp_path)
    fidelity = result.name_fidelity
    # Three tastes written in the bios and titles: each keyword name picks its own members out.
    assert fidelity is not None and len(fidelity.personas) == 3
    assert [p.name for p in fidelity.personas] == [p.display_name for p in result.personas]
    assert fidelity.mean_auc > 0.9 and fidelity.matcher_accuracy > fidelity.chance_majority
    assert fidelity.n_users == result.dataset.n_users and fidelity.encoder.startswith("tfidf")
    # the run fuses text with behaviour ("auto" weight here): the text part is what the names are compared with
    assert fidelity.users.startswith("profile text vectors")
    manifest = load_run(shop / "run").manifest
    assert manifest["name_fidelity"]["mean_auc"] == fidelity.mean_auc
    assert len(manifest["name_fidelity"]["personas"]) == 3
    page = (shop / "run" / "report.html").read_text(encoding="utf-8")
    assert "<h2>Name fidelity</h2>" in page and f"{fidelity.mean_auc:.2f}" in page


def test_a_resumed_run_gives_the_same_fidelity(shop: Path, tmp_path: Path, make_config: Any) -> None:
    fresh = _run(make_config(shop, extra="[evaluate]\nenabled = false"), tmp_path).name_fidelity
    # Every stage reused: the figures come back from the manifest.
    again = _run(make_config(shop, extra="[evaluate]\nenabled = false"), tmp_path, resume=True)
    assert again.reused and "describe personas" in again.reused
    assert again.name_fidelity == fresh
    # The encode stage reused, the groups not (another k): the text encoder is rebuilt to encode the names, and
    # gives what a fresh run at that k gives.
    two = make_config(shop, extra="[evaluate]\nenabled = false").read_text().replace("k = 3", "k = 2")
    (shop / "run.toml").write_text(two)
    resumed = _run(shop / "run.toml", tmp_path, resume=True)
    assert "encode" in resumed.reused and "describe personas" not in resumed.reused
    (shop / "run.toml").write_text(two.replace(str(shop / "run"), str(shop / "run2")))
    fresh_two = _run(shop / "run.toml", tmp_path).name_fidelity
    assert resumed.name_fidelity is not None and len(resumed.name_fidelity.personas) == 2
    assert resumed.name_fidelity == fresh_two
