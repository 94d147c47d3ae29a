"""The pipeline on real MovieLens-100K through the CLI (TF-IDF vectors keep it quick in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from personas.cli import app
from personas.data import Dataset
from personas.pipeline import load_run

pytestmark = pytest.mark.realdata


def test_run_on_ml100k_writes_a_verified_artefact(ml100k: Dataset, tmp_path: Path) -> None:
    config = tmp_path / "ml100k.toml"
    config.write_text(
        """
[data]
dataset = "ml-100k"
[encode]
kind = "tfidf"
[discover]
k = "auto"
candidates = [4, 8]
[recommend]
models = ["most-popular", "group-popular", "ease"]
[output]
report = true
"""
    )
    result = CliRunner().invoke(app, ["run", str(config), "--output", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "ml-100k: 943 users, 1,682 items, 100,000 interactions" in result.stdout
    artefact = load_run(tmp_path / "run")
    assert len(artefact.users) == 943
    assert artefact.manifest["n_personas"] in (4, 8)
    metrics = (tmp_path / "run" / "metrics.md").read_text()
    assert "temporal" in metrics.lower()
    # The groups carry signal: group popularity beats global popularity on the same split.
    import json

    results = json.loads((tmp_path / "run" / "metrics.json").read_text())["results"]
    table = {r["model"]: r["metrics"] for r in results}
    assert table["group-popular"]["NDCG@10"] > table["most-popular"]["NDCG@10"]
