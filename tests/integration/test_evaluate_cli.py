"""``personas evaluate`` end to end on a small data folder: tables written, protocol printed, errors clean."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from personas.cli import app

runner = CliRunner()


def _folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    lines = ["user_id,item_id,rating,timestamp"]
    for u in range(40):
        pool = range(0, 15) if u % 2 == 0 else range(15, 30)
        for t, i in enumerate(rng.choice(list(pool), size=10, replace=False)):
            lines.append(f"u{u},i{i},5,{1000 * u + t}")
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "interactions.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_evaluate_writes_tables_with_the_protocol(tmp_path: Path) -> None:
    data = _folder(tmp_path / "data")
    out = tmp_path / "out"
    args = ["evaluate", "--dataset", str(data), "--protocol", "warm", "--models", "Random,MostPopular,ItemKNN"]
    result = runner.invoke(app, [*args, "--groups", "behaviour", "--n-groups", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    md = (out / "data-warm.md").read_text()
    assert "| split | warm (TemporalSplit: seed=0" in md
    assert "personas evaluate" in md
    payload = json.loads((out / "data-warm.json").read_text())
    assert [r["model"] for r in payload["results"]] == ["Random", "MostPopular", "ItemKNN"]
    assert payload["results"][2]["tuned"]  # ItemKNN was tuned on validation
    ndcg = {r["model"]: r["metrics"]["NDCG@10"] for r in payload["results"]}
    assert ndcg["ItemKNN"] > ndcg["Random"]


def test_evaluate_bad_protocol_is_a_message_and_exit_code_1(tmp_path: Path) -> None:
    data = _folder(tmp_path / "data")
    result = runner.invoke(app, ["evaluate", "--dataset", str(data), "--protocol", "lukewarm"])
    assert result.exit_code == 1
    assert "Unknown protocol 'lukewarm'" in result.output
    result = runner.invoke(app, ["evaluate", "--dataset", str(data), "--models", "Magic"])
    assert result.exit_code == 1
    assert "Unknown model(s) ['Magic']" in result.output
