"""``personas recommend``: known users, new users from text or items, save and load, user errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from personas.cli import app

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two tastes: u1-u3 watch space films, u4-u6 romances."""
    lines = ["user_id,item_id,timestamp"]
    t = 0
    for user, taken in [("u1", "abc"), ("u2", "ab"), ("u3", "bc"), ("u4", "def"), ("u5", "de"), ("u6", "ef")]:
        for item in taken:
            t += 1
            lines.append(f"{user},{item},{t}")
    (tmp_path / "interactions.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "items.csv").write_text(
        "item_id,title,genres\na,Star Wars,Sci-Fi\nb,Alien,Sci-Fi\nc,Solaris,Sci-Fi\n"
        "d,Notting Hill,Romance\ne,Amelie,Romance\nf,Casablanca,Romance\n"
    )
    return tmp_path


def test_known_user_gets_titles_and_a_neighbour_reason(folder: Path) -> None:
    result = runner.invoke(
        app, ["recommend", "--dataset", str(folder), "--user", "u2", "--model", "item-knn", "--groups", "0", "--n", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "Solaris" in result.output and "like " in result.output


def test_unknown_user_gets_the_popular_fallback_and_the_batch_goes_on(folder: Path) -> None:
    result = runner.invoke(
        app,
        [
            "recommend",
            "--dataset",
            str(folder),
            "--user",
            "nobody",
            "--user",
            "u2",
            "--model",
            "item-knn",
            "--groups",
            "0",
            "--n",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Unknown user 'nobody': showing the fallback" in result.output
    assert "User u2" in result.output and "Solaris" in result.output


def test_new_user_from_items_and_unknown_ids(folder: Path) -> None:
    result = runner.invoke(
        app, ["recommend", "--dataset", str(folder), "--items", "d,zzz", "--model", "ease", "--groups", "0", "--n", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "Amelie" in result.output or "Casablanca" in result.output
    assert "zzz" in result.output


def test_save_then_load(folder: Path, tmp_path: Path) -> None:
    saved = tmp_path / "model"
    first = runner.invoke(
        app,
        [
            "recommend",
            "--dataset",
            str(folder),
            "--user",
            "u5",
            "--model",
            "router",
            "--groups",
            "2",
            "--save",
            str(saved),
        ],
    )
    assert first.exit_code == 0, first.output
    assert (saved / "manifest.json").is_file()
    second = runner.invoke(app, ["recommend", "--dataset", str(folder), "--user", "u5", "--load", str(saved)])
    assert second.exit_code == 0, second.output
    table = lambda out: out[out.index("User u5") :]  # noqa: E731
    assert table(first.output) == table(second.output)


def test_nothing_to_recommend_for_is_a_user_error(folder: Path) -> None:
    result = runner.invoke(app, ["recommend", "--dataset", str(folder)])
    assert result.exit_code == 1
    assert "--user" in result.output and "Traceback" not in result.output
