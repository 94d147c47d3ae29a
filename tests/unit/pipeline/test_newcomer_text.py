"""A newcomer's messy review HTML and social posts through the whole pipeline (TF-IDF: no model needed):
no markup, link, @mention or "RT" reaches a keyword, a name or a quote (issue 16, problem 6)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from sklearn.metrics import normalized_mutual_info_score

from personas.config import Settings
from personas.pipeline import Pipeline, PipelineConfig

MESSY = Path(__file__).parents[2] / "data" / "newcomer" / "messy_html"
# What review HTML, links, mentions and retweets leave behind when they are read as words.
DIRT = re.compile(
    r"\b(br|span|class|tiny|href|amp|http|https|www|com|gp|amazon|bit|ly|co|rt|beanbarn\w*|leafandkettle\w*|"
    r"happytails\w*|product)\b|[<>@/]",
    re.IGNORECASE,
)


def _run(tmp_path: Path, clean: dict[str, object]) -> Pipeline:
    config = PipelineConfig.model_validate(
        {
            "data": {"interactions": MESSY / "reviews.csv", "users": MESSY / "users.csv", "clean": clean},
            "encode": {"kind": "tfidf", "behaviour_weight": 0.0},
            "discover": {"k": 3},
            "evaluate": {"enabled": False},
            "output": {"dir": tmp_path / "run", "report": False},
        }
    )
    pipeline = Pipeline(config, settings=Settings(home=tmp_path / "home"), console=Console(quiet=True))
    pipeline.result = pipeline.run()  # type: ignore[attr-defined]
    return pipeline


@pytest.mark.filterwarnings("ignore:TfidfEncoder")
def test_messy_reviews_give_clean_keywords_names_and_quotes(tmp_path: Path) -> None:
    result = _run(tmp_path, {}).result  # type: ignore[attr-defined]
    themes = pd.read_csv(MESSY / "themes.csv")["theme"]
    assert normalized_mutual_info_score(themes, result.labels) == pytest.approx(1.0)
    for persona in result.personas:
        words = [k.term for k in persona.keywords] + [persona.name] + [r.quote for r in persona.representatives]
        assert persona.keywords and all(r.quote for r in persona.representatives)
        assert not [w for w in words if DIRT.search(w)], persona
    names = sorted(p.name.lower() for p in result.personas)
    assert any("coffee" in n for n in names) and any("tea" in n for n in names) and any("dog" in n for n in names)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["cleaning"]["changed"] >= 24
    assert {"html", "urls", "mentions", "retweets"} <= set(manifest["cleaning"]["steps"])


@pytest.mark.filterwarnings("ignore:TfidfEncoder")
def test_without_cleaning_the_dirt_stays_in_the_texts_but_not_in_keywords_or_names(tmp_path: Path) -> None:
    """The same data with [data.clean] enabled = false: the texts keep markup, links and handles; keywords and
    names still do not (they keep only over-represented words, never markup words, ids or digits)."""
    result = _run(tmp_path, {"enabled": False}).result  # type: ignore[attr-defined]
    assert sum(bool(DIRT.search(text)) for text in result.texts) >= 10
    words = [k.term for p in result.personas for k in p.keywords] + [p.name for p in result.personas]
    assert not [w for w in words if DIRT.search(w)]


def test_cleaning_is_set_in_the_data_clean_table(tmp_path: Path) -> None:
    from personas.errors import ConfigError
    from personas.pipeline import load_config

    path = tmp_path / "run.toml"
    path.write_text('[data]\ndataset = "ml-100k"\n[data.clean]\nhtml = false\nmentions = false\n', encoding="utf-8")
    clean = load_config(path).data.clean
    assert (clean.enabled, clean.html, clean.mentions, clean.urls) == (True, False, False, True)
    path.write_text('[data]\ndataset = "ml-100k"\n[data.clean]\nlinks = false\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="links"):
        load_config(path)
