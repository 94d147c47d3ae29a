"""Issue 16, problems 1 and 8: one CLI grammar. Every command that reads data takes --map, --encoding and
--delimiter; hints are written as the user typed (flags at the CLI, keys in a TOML); user mistakes end with
one line and exit code 1; `data info` understands a run config and predicts a skipped evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personas.cli import app
from personas.errors import DataError
from personas.pipeline import load_config
from personas.pipeline.run import Pipeline

runner = CliRunner()
ONE_PER_USER = Path(__file__).parents[1] / "data" / "newcomer" / "one_per_user"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _shop(folder: Path) -> Path:
    """Latin-1, semicolons, other column names: a user's export as it comes."""
    rows = ["kunde;artikel;note"]
    for user in range(12):
        for item in range(5):
            rows.append(f"kö{user};a{(user + item) % 8};{1 + (user + item) % 5}")
    path = folder / "bestellungen.csv"
    path.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    items = ["artikel;titel"] + [f"a{i};Käse Nr {i}" for i in range(8)]
    (folder / "artikel.csv").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    return path


QUICK = ["--models", "MostPopular", "--groups", "behaviour", "--n-groups", "2"]
MAP = ["--map", "interactions.user_id=kunde", "--map", "interactions.item_id=artikel"]


@pytest.mark.parametrize("command", [["data", "info"], ["evaluate"], ["recommend"], ["discover"], ["encode"], ["run"]])
def test_every_command_that_reads_data_has_the_same_data_options(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    options = {"--map", "--encoding", "--delimiter", "--unknown-ids"} if command != ["run"] else {"--resume"}
    assert all(option in result.output for option in options), result.output


def test_data_options_reach_the_loader_in_evaluate_recommend_and_data_info(tmp_path: Path) -> None:
    path = _shop(tmp_path)
    data = ["--encoding", "latin-1", "--delimiter", ";", *MAP]
    info = runner.invoke(app, ["data", "info", str(path), "--json", *data])
    assert info.exit_code == 0, info.output
    assert json.loads(info.stdout)["users"] == 12
    evaluated = runner.invoke(
        app,
        ["evaluate", "--dataset", str(path), "--protocol", "cold-users", *QUICK, *data],
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "cold-users on bestellungen" in evaluated.output
    recommended = runner.invoke(
        app, ["recommend", "--dataset", str(path), "--model", "most-popular", "--user", "kö1", "--n", "2", *data]
    )
    assert recommended.exit_code == 0, recommended.output
    assert "User kö1" in recommended.output


def test_hints_are_flags_at_the_command_line(tmp_path: Path) -> None:
    path = _shop(tmp_path)
    wrong_encoding = runner.invoke(app, ["data", "info", str(path), "--delimiter", ";", *MAP])
    assert wrong_encoding.exit_code == 1 and "Traceback" not in wrong_encoding.output
    assert "--encoding latin-1" in _flat(wrong_encoding.output) and "encoding=" not in wrong_encoding.output
    wrong_delimiter = runner.invoke(app, ["data", "info", str(path), "--encoding", "latin-1", *MAP])
    assert wrong_delimiter.exit_code == 1
    assert "--delimiter ';'" in _flat(wrong_delimiter.output) and "delimiter=" not in wrong_delimiter.output
    unmapped = runner.invoke(app, ["data", "info", str(path), "--encoding", "latin-1", "--delimiter", ";"])
    assert unmapped.exit_code == 1
    assert "--map interactions.user_id=<column in your file>" in _flat(unmapped.output)
    assert "columns={" not in unmapped.output
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "interactions.csv").write_text("user_id,item_id\nu1,a\nu2,b\n")
    (folder / "users.csv").write_text("user_id,text\nu1,hello\n")
    unknown = runner.invoke(app, ["evaluate", "--dataset", str(folder)])
    assert unknown.exit_code == 1 and "--unknown-ids drop" in _flat(unknown.output)
    assert "unknown_ids=" not in unknown.output
    dropped = runner.invoke(app, ["data", "info", str(folder), "--unknown-ids", "drop", "--json"])
    assert dropped.exit_code == 0 and json.loads(dropped.stdout)["interactions"] == 1


def test_hints_are_toml_keys_in_a_run(tmp_path: Path) -> None:
    _shop(tmp_path)
    config = tmp_path / "my.toml"
    config.write_text(
        '[data]\ninteractions = "bestellungen.csv"\ndelimiter = ";"\n'
        '[data.columns.interactions]\nuser_id = "kunde"\nitem_id = "artikel"\n'
    )
    with pytest.raises(DataError) as info:
        Pipeline(load_config(config)).load()
    assert '[data] encoding = "latin-1"' in str(info.value) and "encoding=" not in str(info.value)


def test_a_duplicate_csv_header_is_refused_with_file_and_column(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("user_id,item_id,rating,rating\n1,a,4,5\n")
    result = runner.invoke(app, ["data", "info", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{path}, line 1 (header): column 'rating' appears twice (columns 3 and 4)" in _flat(result.output)


def _run_config(tmp_path: Path) -> Path:
    config = tmp_path / "my.toml"
    config.write_text(
        f'[data]\ninteractions = "{ONE_PER_USER / "interactions.csv"}"\nusers = "{ONE_PER_USER / "users.csv"}"\n'
        f'items = "{ONE_PER_USER / "items.csv"}"\n[encode]\nkind = "tfidf"\n[discover]\nk = 4\n'
        f'[output]\ndir = "{tmp_path / "runs" / "x"}"\nreport = false\n'
    )
    return config


def test_data_info_reads_a_run_config_and_predicts_the_skipped_evaluation(tmp_path: Path) -> None:
    config = _run_config(tmp_path)
    result = runner.invoke(app, ["data", "info", str(config), "--json"])
    assert result.exit_code == 0, result.output  # before: "is neither a built-in dataset nor ... data file"
    summary = json.loads(result.stdout)
    assert summary["users"] == 40 and summary["interactions"] == 40
    assert summary["evaluation"]["runs"] is False and "at least 5 interactions" in summary["evaluation"]["reason"]
    warning = _flat(result.stderr)
    assert "evaluation (warm) will be skipped" in warning and '[evaluate] protocol = "cold-users"' in warning
    # A plain data folder gets the same forecast, with the flag for `personas evaluate`.
    plain = runner.invoke(app, ["data", "info", str(ONE_PER_USER)])
    assert plain.exit_code == 0 and "--protocol cold-users" in _flat(plain.stderr)


def test_a_file_that_is_not_data_is_named_as_such(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    result = runner.invoke(app, ["data", "info", str(notes)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "is a file, but not a data file" in _flat(result.output)
    # and the other way round: a data file given to `run`
    data = tmp_path / "ratings.csv"
    data.write_text("user_id,item_id\n1,a\n")
    result = runner.invoke(app, ["run", str(data)])
    assert result.exit_code == 1 and "is a data file; `personas run` takes a run config" in _flat(result.output)


def test_run_on_one_interaction_per_user_completes_and_resumes(tmp_path: Path) -> None:
    config = _run_config(tmp_path)
    env = {"PERSONAS_HOME": str(tmp_path / "home")}
    first = runner.invoke(app, ["run", str(config)], env=env)
    assert first.exit_code == 0, first.output  # before: DataError at evaluate, no run folder
    assert "evaluation skipped" in _flat(first.stderr) and (tmp_path / "runs" / "x" / "manifest.json").is_file()
    assert "Evaluation skipped" in _flat(first.stdout)
    again = runner.invoke(app, ["run", str(config), "--resume"], env=env)
    assert again.exit_code == 0, again.output
    assert _flat(again.stderr).count("reused from") == 5  # encode, discover, describe, fit, evaluate


def test_describe_a_run_folder(tmp_path: Path) -> None:
    config = _run_config(tmp_path)
    assert runner.invoke(app, ["run", str(config)], env={"PERSONAS_HOME": str(tmp_path / "home")}).exit_code == 0
    result = runner.invoke(app, ["describe", str(tmp_path / "runs" / "x"), "--json"])
    assert result.exit_code == 0, result.output  # before: IsADirectoryError traceback
    assert len(json.loads(result.stdout)) == 4
    empty = runner.invoke(app, ["describe", str(tmp_path)])
    assert empty.exit_code == 1 and "Traceback" not in empty.output
    assert "folder without a personas.json" in _flat(empty.output)


def test_evaluate_says_why_a_protocol_cannot_score_and_what_to_try(tmp_path: Path) -> None:
    # Every item is taken by one user only: held-out users' items were never seen in train.
    path = tmp_path / "interactions.csv"
    path.write_text("user_id,item_id\n" + "".join(f"u{u},i{u}-{j}\n" for u in range(10) for j in range(3)))
    result = runner.invoke(
        app,
        ["evaluate", "--dataset", str(path), "--protocol", "cold-users", *QUICK],
    )
    assert result.exit_code == 0, result.output
    warning = _flat(result.stderr)
    assert "none of the 6 items in the test set was taken by any user in train" in warning
    assert "measures nothing" in warning
    # A protocol that cannot run at all is one line in the CLI's words.
    warm = runner.invoke(app, ["evaluate", "--dataset", str(ONE_PER_USER), "--protocol", "warm"])
    assert warm.exit_code == 1 and "Traceback" not in warm.output
    assert "try --protocol cold-users" in _flat(warm.output)


def test_discover_cleans_a_users_files_as_run_does(tmp_path: Path) -> None:
    """`personas discover` on review HTML: no markup, link part or @handle in any name or keyword (it used to
    skip the cleaning that `personas run` does)."""
    messy = Path(__file__).parents[1] / "data" / "newcomer" / "messy_html"
    folder = tmp_path / "messy"
    folder.mkdir()
    (folder / "interactions.csv").write_bytes((messy / "reviews.csv").read_bytes())
    (folder / "users.csv").write_bytes((messy / "users.csv").read_bytes())
    out = tmp_path / "out"
    result = runner.invoke(app, ["discover", str(folder), "--encoder", "tfidf", "--k", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    cards = json.loads((out / "personas.json").read_text(encoding="utf-8"))
    cards = cards["personas"] if isinstance(cards, dict) else cards
    words = " ".join([c["name"] for c in cards] + [k["term"] for c in cards for k in c["keywords"]]).split()
    dirt = {"br", "span", "class", "tiny", "href", "http", "www", "com", "gp", "rt", "amazon"}
    assert len(cards) == 3 and not dirt & set(words)
    assert not any(w.startswith("@") for w in words)
