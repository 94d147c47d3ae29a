"""The newcomer corpus end to end through the real CLI, as a first-time user runs it (issue 16): each set's own
run.toml with ``personas run <set>/run.toml --output <folder>``.

- fine_food: 500 Amazon fine-food reviews with their raw HTML, one per product: a complete run folder, sensible
  personas, and no markup or link part in any keyword, name or quote.
- messy_html: review HTML and social posts (RT, @mentions, short links) recover the three themes, cleanly.
- one_per_user: evaluation cannot run on one interaction per user: skipped with a warning, the run completes.
- broken: each broken file or config ends with one line naming the file and what to fix, exit code 1, no
  traceback and no run folder.

The Chinese set has its own test (test_newcomer_text_realdata.py).
"""

from __future__ import annotations

import html
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

NEWCOMER = Path(__file__).parents[1] / "data" / "newcomer"
# What review HTML, entities, links, mentions and retweets leave behind: as words in a keyword or a name...
WORD_DIRT = re.compile(r"\b(br|span|class|tiny|href|nbsp|quot|amp|https?|www|com|gp|bit|ly|co|rt|html)\b|[<>@]", re.I)
# ... and as markup in a quote (which is a user's own sentence, so "class" or "com" may be plain words there).
QUOTE_DIRT = re.compile(r"<\s*/?\s*[a-z]+[^>]*>|/>|&[a-z]+;|&#\d+;|https?:|www\.|\.com/|\bRT @|@\w", re.I)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One PERSONAS_HOME for the module: the MiniLM model is prepared once, not once per test."""
    return tmp_path_factory.mktemp("home")


def _run(folder: Path, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """Copy a set as a user would have it and run ``personas run run.toml --output run``."""
    work = tmp_path / folder.name
    shutil.copytree(folder, work)
    monkeypatch.setenv("PERSONAS_HOME", str(home))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(work / "run.toml"), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return out, " ".join(result.output.split())


def _dirt(run_folder: Path) -> list[str]:
    """Every name, keyword and quote of the run (as written to personas.json) that still carries markup."""
    personas = json.loads((run_folder / "personas.json").read_text(encoding="utf-8"))
    dirty: list[str] = []
    for persona in personas:
        words = [persona["name"]] + [k["term"] if isinstance(k, dict) else str(k) for k in persona["keywords"]]
        dirty += [w for w in words if WORD_DIRT.search(w)]
        dirty += [r["quote"] for r in persona["representatives"] if not r["quote"] or QUOTE_DIRT.search(r["quote"])]
    return dirty


def _plain(text: str) -> str:
    """Review text without tags, entities or spacing differences, to find a quote in its review."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def test_fine_food_reviews_give_a_complete_run_with_clean_sensible_personas(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = pd.read_csv(NEWCOMER / "fine_food" / "reviews.csv")
    assert raw["review"].str.contains("<br />").sum() >= 100  # the slice does carry the site's HTML
    out, text = _run(NEWCOMER / "fine_food", tmp_path, home, monkeypatch)
    run = load_run(out)
    manifest = run.manifest
    assert manifest["status"] == "complete"
    assert manifest["encoder"]["kind"] == "minilm" and manifest["encoder"]["language"]["code"] == "en"
    assert manifest["cleaning"]["steps"]["html"] >= 100
    for name in ("manifest.json", "personas.json", "users.parquet", "vectors.npy"):
        assert (out / name).is_file(), name
    assert len(run.users) == 500 and run.users["persona"].notna().all()

    # Sensible: several groups, none swallowing the data, each with a name, keywords and real quotes.
    shares = run.users["persona"].value_counts(normalize=True)
    assert len(run.personas) >= 3 and shares.max() <= 0.8
    assert manifest["grouping"]["warnings"] == []
    own = {product: _plain(review) for product, review in zip(raw["product"], raw["review"], strict=True)}
    for persona in run.personas:
        assert persona.keywords and not persona.name.startswith("group ")
        for rep in persona.representatives:  # a quote is the product's own review, markup gone
            assert rep.quote and _plain(rep.quote)[:40] in own[rep.user_id], (rep.quote, own[rep.user_id])
    # Food themes a reader would recognise come out as names (the issue saw tea, coffee, pet food, snacks...).
    names = " ".join(p.name for p in run.personas).lower()
    assert sum(theme in names for theme in ("tea", "coffee", "dog", "chocolate", "cookie", "sauce", "snack")) >= 3

    assert not _dirt(out)
    assert "Error" not in text and "Warning" not in text


def test_messy_html_recovers_the_themes_without_markup(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, _ = _run(NEWCOMER / "messy_html", tmp_path, home, monkeypatch)
    run = load_run(out)
    assert run.manifest["status"] == "complete" and run.manifest["encoder"]["kind"] == "minilm"
    assert {"html", "urls", "mentions", "retweets"} <= set(run.manifest["cleaning"]["steps"])
    themes = pd.read_csv(NEWCOMER / "messy_html" / "themes.csv")
    labels = run.users.set_index("user_id").loc[themes["user_id"], "persona"]
    assert normalized_mutual_info_score(themes["theme"], labels) >= 0.9
    assert not _dirt(out)
    handles = re.compile(r"beanbarn|leafandkettle|happytails", re.IGNORECASE)
    assert not [p.name for p in run.personas if handles.search(p.name + " ".join(k.term for k in p.keywords))]


@pytest.mark.filterwarnings("ignore:BehaviourEncoder")
def test_one_interaction_per_user_skips_evaluation_and_completes(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, text = _run(NEWCOMER / "one_per_user", tmp_path, home, monkeypatch)
    assert "Warning: evaluation skipped: the warm protocol" in text
    assert '[evaluate] protocol = "cold-users"' in text and "[evaluate] enabled = false" in text
    run = load_run(out)
    assert run.manifest["status"] == "complete"
    assert run.manifest["evaluation"]["status"] == "skipped"
    assert "stages" in run.manifest and "evaluate" in run.manifest["stages"]
    assert len(run.personas) == 4
    users = pd.read_csv(NEWCOMER / "one_per_user" / "users.csv")
    assert sorted(run.users["user_id"]) == sorted(users["user_id"])
    # Each theme has two items (p1-p2 coffee, p3-p4 tea, ...): the groups follow what users wrote.
    taken = pd.read_csv(NEWCOMER / "one_per_user" / "interactions.csv").set_index("user_id")["item_id"]
    themes = taken.map(lambda item: (int(item[1:]) - 1) // 2)
    labels = run.users.set_index("user_id").loc[themes.index, "persona"]
    assert normalized_mutual_info_score(themes, labels) >= 0.9


BROKEN = NEWCOMER / "broken"
# config -> the file the error must name and what its one line must say (line/column, then how to fix).
BROKEN_CASES = {
    "semicolons.toml": ("semicolons.csv", ["line 1:", 'set [data] delimiter = ";"']),
    "no_item_column.toml": (
        "no_item_column.csv",
        ["line 1 (header)", "'item_id'", 'map it with [data.columns.interactions] item_id = "<column in your file>"'],
    ),
    "duplicate_header.toml": (
        "duplicate_header.csv",
        ["line 1 (header): column 'rating' appears twice (columns 3 and 4)", "Rename or remove one of them"],
    ),
    "latin1.toml": ("latin1.csv", ["line 2, column 11", "not valid utf-8", '[data] encoding = "latin-1"']),
    "empty.toml": ("empty.csv", ["the file is empty", "Expected a header line and data rows"]),
    "bad_rating.toml": ("bad_rating.csv", ["line 3, column 3 ('rating')", "'five' is not a number", "plain numbers"]),
    "unknown_user.toml": (
        "unknown_user.csv",
        ["line 4, column 1 ('user_id')", "'u9'", "users.csv", '[data] unknown_ids = "drop"'],
    ),
    "bad_syntax.toml": ("bad_syntax.toml", ["not valid TOML", "line 2, column 26"]),
    "bad_k.toml": ("bad_k.toml", ["'k' parameter of [discover]", 'int >= 2 or "auto"', "Got 1"]),
}


@pytest.mark.parametrize("config", sorted(BROKEN_CASES))
def test_a_broken_file_ends_with_one_line_that_says_where_and_how_to_fix(
    config: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "broken"
    shutil.copytree(BROKEN, work)
    monkeypatch.setenv("PERSONAS_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(work)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(work / config), "--output", str(out)])
    assert result.exit_code == 1, result.output
    # A user mistake exits cleanly (SystemExit from the CLI), never with an exception and its traceback.
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output  # one line, not wrapped, not repeated
    named, says = BROKEN_CASES[config]
    assert f"{work / named}" in errors[0], errors[0]
    for part in says:
        assert part in errors[0], (part, errors[0])
    # Nothing half-written: neither the --output folder nor the TOML's own output dir.
    assert not out.exists() and not (work / "runs").exists()
