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
    result = runner.invoke(app, ["evaluate", "--dataset", str(data), "--tune"])
    assert result.exit_code == 1
    assert "needs a text encoder (text_encoder='minilm')" in result.output


def test_evaluate_groups_writes_the_quality_table_with_p_values(tmp_path: Path) -> None:
    data = _folder(tmp_path / "data")
    out = tmp_path / "out"
    result = runner.invoke(app, ["evaluate", "--dataset", str(data), "--protocol", "groups", "--out", str(out)])
    assert result.exit_code == 0, result.output
    md = (out / "data-groups.md").read_text()
    assert "personas evaluate --dataset" in md
    assert "| p-value |" in md
    payload = json.loads((out / "data-groups.json").read_text())
    assert payload["rows"]
    behaviour = [r for r in payload["rows"] if r["groups"].startswith("behaviour")]
    # Two clean tastes: behaviour groups explain behaviour better than global popularity, significantly.
    assert all(r["GroupPopular Recall@10"] > r["MostPopular Recall@10"] for r in behaviour)
    # k=8 (20 users per taste): a significant paired difference; k=32 on 40 users is too fine to be one.
    assert behaviour[0]["groups"] == "behaviour k=8"
    assert behaviour[0]["p-value"] < 0.01
    # No text in this folder: the text sources say so instead of failing the whole table.
    assert "profile: not available" in md
    assert "no word occurs in the profile texts of two users" in md
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_evaluate_cold_users_tags_writes_both_variants_and_needs_tags(tmp_path: Path) -> None:
    data = _folder(tmp_path / "data")
    result = runner.invoke(app, ["evaluate", "--dataset", str(data), "--protocol", "cold-users-tags"])
    assert result.exit_code == 1
    assert "has no tags" in result.output
    # Eight users write tags: on an item they took ('mine') and on one they did not ('other').
    lines = ["user_id,item_id,tag"]
    lines += [f"u{u},i{0 if u % 2 == 0 else 15},mine{u}" for u in range(8)]
    lines += [f"u{u},i{29 if u % 2 == 0 else 0},other{u}" for u in range(8)]
    (data / "tags.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    args = ["evaluate", "--dataset", str(data), "--protocol", "cold-users-tags", "--models", "MostPopular,GroupPopular"]
    result = runner.invoke(app, [*args, "--groups", "behaviour", "--n-groups", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for variant, held_tags in (("all", "keep"), ("no-held", "drop")):
        md = (out / f"data-cold-users-tags-{variant}.md").read_text()
        assert f"ColdTaggers: seed=0, fraction=0.5, held_tags={held_tags}" in md
        assert "4 held-out users, all of whom wrote tags (8 tags)" in md
