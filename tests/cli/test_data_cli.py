from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personas.cli import app

runner = CliRunner()


def test_info_on_a_folder_with_mapping(tmp_path: Path) -> None:
    (tmp_path / "interactions.csv").write_text("uid,iid,stars\n1,a,4\n1,b,2\n2,a,5\n")
    (tmp_path / "items.csv").write_text("item_id,title\na,Alpha\nb,Beta\nc,Gamma\n")
    result = runner.invoke(
        app,
        [
            "data",
            "info",
            str(tmp_path),
            "--json",
            "--map",
            "interactions.user_id=uid",
            "--map",
            "interactions.item_id=iid",
            "--map",
            "interactions.rating=stars",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["users"], summary["items"], summary["interactions"]) == (2, 3, 3)
    assert summary["rating_min"] == 2.0 and summary["items_with_title"] == 1.0
    assert summary["density"] == pytest.approx(3 / 6)


def test_bad_input_is_a_message_and_exit_code_1(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("user_id,item_id,rating\n1,a,great\n")
    result = runner.invoke(app, ["data", "info", str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "line 2, column 3 ('rating')" in result.output.replace("\n", "")


def test_bad_mapping_and_unknown_source(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "info", str(tmp_path), "--map", "user_id=uid"])
    assert result.exit_code == 1
    assert "KIND.FIELD=COLUMN" in result.output
    result = runner.invoke(app, ["data", "info", "no-such-dataset"])
    assert result.exit_code == 1
    assert "neither a built-in dataset" in result.output
