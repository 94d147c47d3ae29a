"""personas.data.items: item texts in each consumer's style, genre tokens, knowledge-graph facts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from personas.data import Dataset, genre_tokens, item_texts, kg_facts, split_genres
from personas.errors import ConfigError


def _dataset(items: pd.DataFrame, source: str = "") -> Dataset:
    ids = items["item_id"].tolist()
    inter = pd.DataFrame({"user_id": ["u1"] * len(ids), "item_id": ids, "rating": 5.0, "timestamp": range(len(ids))})
    return Dataset.from_frames(inter, items=items, name="items", source=source)


@pytest.fixture
def films() -> Dataset:
    return _dataset(
        pd.DataFrame(
            {
                "item_id": ["a", "b", "c", "d"],
                "title": ["Star Wars (1977)", "Alien", None, "Heat"],
                "genres": ["Action|Sci-Fi", "Horror, Sci-Fi", None, 7],
                "text": [None, "in space no one can hear you scream", None, None],
                "release_year": [1977, 1979, None, 1995],
            }
        )
    )


def test_split_genres_on_pipes_commas_and_spaces() -> None:
    assert split_genres("Action|Sci-Fi") == ["Action", "Sci-Fi"]
    assert split_genres("Horror, Sci-Fi") == ["Horror", "Sci-Fi"]
    assert split_genres("Comedy\tRomance |Drama,") == ["Comedy", "Romance", "Drama"]
    assert split_genres("|") == []
    assert split_genres(None) == [] and split_genres(float("nan")) == [] and split_genres(7) == []


def test_genre_tokens_per_item_row(films: Dataset) -> None:
    assert genre_tokens(films) == [["Action", "Sci-Fi"], ["Horror", "Sci-Fi"], [], []]
    # FeatureCF's rule: a present non-string value is a genre too
    assert genre_tokens(films, strings_only=False) == [["Action", "Sci-Fi"], ["Horror", "Sci-Fi"], [], ["7"]]
    assert genre_tokens(_dataset(pd.DataFrame({"item_id": ["x", "y"]}))) == [[], []]


def test_fields_style_joins_string_values_then_facts(films: Dataset) -> None:
    assert item_texts(films) == [
        "Star Wars (1977) Action|Sci-Fi",
        "Alien Horror, Sci-Fi in space no one can hear you scream",
        "",
        "Heat",
    ]
    facts = {"a": ["directed_by_m_1"], "c": ["actor_m_2", "actor_m_3"]}
    texts = item_texts(films, "fields", fields=("title", "text"), facts=facts)
    assert texts == [
        "Star Wars (1977) directed_by_m_1",
        "Alien in space no one can hear you scream",
        "actor_m_2 actor_m_3",
        "Heat",
    ]


def test_label_style_is_text_or_title_with_genres_in_brackets(films: Dataset) -> None:
    # some item has a text, so the text is the label's base (empty where an item has none)
    assert item_texts(films, "label") == [
        " [Action|Sci-Fi]",
        "in space no one can hear you scream [Horror, Sci-Fi]",
        "",
        " [7]",
    ]
    no_text = _dataset(pd.DataFrame({"item_id": ["a", "b"], "title": ["Heat", None], "genres": ["Crime", None]}))
    assert item_texts(no_text, "label") == ["Heat [Crime]", ""]


def test_template_style_fills_item_columns(films: Dataset) -> None:
    texts = item_texts(films, "template", template="{title} ({release_year}) [{genres}]")
    assert texts == [
        "Star Wars (1977) (1977.0) [Action|Sci-Fi]",
        "Alien (1979.0) [Horror, Sci-Fi]",
        "",
        "Heat (1995.0) [7]",
    ]
    mapped = item_texts(films, "template", template="{genres}", value_maps={"genres": {"7": "Crime"}})
    assert mapped[3] == "Crime"
    with pytest.raises(ConfigError, match="needs a template"):
        item_texts(films, "template")


def test_kg_facts_from_recbole_files_beside_the_data(tmp_path: Path) -> None:
    (tmp_path / "toy.link").write_text("item_id:token\tentity_id:token\na\tm.1\nb\tm.2\n")
    (tmp_path / "toy.kg").write_text(
        "head_id:token\trelation_id:token\ttail_id:token\n"
        "m.1\tfilm.film.directed_by\tm.9\n"
        "m.1\tfilm.film.actor\tm.8\n"
        "m.2\tpeople.person.gender\tm.7\n"
    )
    data = _dataset(pd.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"]}), source=str(tmp_path))
    assert kg_facts(data) == {"a": ["directed_by_m_9", "actor_m_8"]}
    assert item_texts(data, facts=kg_facts(data)) == ["A directed_by_m_9 actor_m_8", "B"]
    assert kg_facts(_dataset(pd.DataFrame({"item_id": ["a"]}))) == {}
