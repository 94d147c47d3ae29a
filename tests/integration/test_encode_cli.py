"""``personas encode`` end to end on a small data folder (real files, real encoders)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from personas.cli import app

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rows = ["user_id,item_id,rating,timestamp"]
    t = 0
    for user, liked in [("u1", "abc"), ("u2", "ab"), ("u3", "bc"), ("u4", "def"), ("u5", "de"), ("u6", "ef")]:
        for item in liked:
            t += 1
            rows.append(f"{user},{item},5,{t}")
    (tmp_path / "interactions.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "items.csv").write_text(
        "item_id,title,genres\na,Star Wars,Sci-Fi\nb,Alien,Sci-Fi\nc,Solaris,Sci-Fi\n"
        "d,Notting Hill,Romance\ne,Amelie,Romance\nf,Casablanca,Romance\n"
    )
    return tmp_path


def test_encode_writes_npy_with_ids_in_user_order(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "vectors.npy"
    result = runner.invoke(app, ["encode", str(folder), "--encoder", "tfidf", "--out", str(out)])
    assert result.exit_code == 0, result.output
    vectors = np.load(out, allow_pickle=False)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["user_ids"] == ["u1", "u2", "u3", "u4", "u5", "u6"]
    assert vectors.shape == (6, meta["dim"]) and meta["encoder"].startswith("tfidf-lsa")
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not list(out.parent.glob(".*.tmp"))  # no temporary files left behind


def test_encode_writes_parquet_for_behaviour_and_fusion(folder: Path, tmp_path: Path) -> None:
    for encoder in ("behaviour", "fusion"):
        out = tmp_path / f"{encoder}.parquet"
        result = runner.invoke(
            app, ["encode", str(folder), "--encoder", encoder, "--out", str(out), "--no-cache", "--threads", "1"]
        )
        assert result.exit_code == 0, result.output
        table = pq.read_table(out)
        assert table.column("user_id").to_pylist() == ["u1", "u2", "u3", "u4", "u5", "u6"]
        vectors = np.stack(table.column("vector").to_numpy(zero_copy_only=False))
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert vectors[0] @ vectors[1] > vectors[0] @ vectors[4]  # two sci-fi fans vs a romance fan


def test_encode_user_errors_exit_1_with_a_message(folder: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["encode", str(folder), "--encoder", "bert", "--out", str(tmp_path / "x.npy")])
    assert result.exit_code == 1
    assert "--encoder must be one of minilm" in result.output
    result = runner.invoke(app, ["encode", str(folder), "--encoder", "tfidf", "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 1
    assert "use a .npy or .parquet file name" in result.output


def test_encode_builds_the_encoder_from_a_json_config(folder: Path, tmp_path: Path) -> None:
    config = tmp_path / "encoder.json"
    config.write_text(json.dumps({"kind": "tfidf", "n_components": 3, "min_df": 1}))
    out = tmp_path / "vectors.npy"
    result = runner.invoke(app, ["encode", str(folder), "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert np.load(out, allow_pickle=False).shape == (6, 3)
    result = runner.invoke(
        app, ["encode", str(folder), "--config", '{"kind": "behaviour", "n_components": 2}', "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert np.load(out, allow_pickle=False).shape == (6, 2)
    result = runner.invoke(
        app, ["encode", str(folder), "--config", '{"kind": "tfidf", "n_components": 0}', "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "'n_components' parameter of TfidfConfig is invalid" in result.output
