"""`personas serve` refuses a bad folder with a message (no traceback); settings come from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from personas.api import ServeSettings
from personas.cli import app


def test_serve_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--model", str(tmp_path), "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 1
    assert "manifest.json" in result.output and "Traceback" not in result.output


def test_serve_refuses_a_tampered_run(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "personas.json").write_text("[]")
    result = CliRunner().invoke(app, ["serve", "--model", str(copy), "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 1
    assert "changed: personas.json" in result.output


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PERSONAS_SERVE_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("PERSONAS_SERVE_MAX_N", "7")
    monkeypatch.setenv("PERSONAS_SERVE_DATABASE_URL", "sqlite:///x.db")
    settings = ServeSettings()
    assert (settings.model_dir, settings.max_n, settings.resolved_database_url()) == (tmp_path, 7, "sqlite:///x.db")


def test_default_database_is_outside_the_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from personas.config import get_settings

    monkeypatch.setenv("PERSONAS_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        url = ServeSettings(model_dir=tmp_path / "run").resolved_database_url()
    finally:
        get_settings.cache_clear()
    assert url == f"sqlite:///{tmp_path / 'home' / 'serve' / 'run.db'}"
