"""The columnar describe path (issue 19) gives what the per-text path gives: the same descriptive texts, the
same keywords (terms, order, scores, contrasts, lifts, supports), the same distinctive items and the same
persona cards, on messy synthetic data (own texts, reviews and tags with markup, item descriptions with every
phrase end, duplicate and disliked interactions, users with nothing, noise labels, Chinese)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset
from personas.describe import (
    DescribeConfig,
    FactsConfig,
    KeywordConfig,
    _describe,
    class_keywords,
    describe_groups,
    descriptive_keywords,
    descriptive_texts,
    distinctive_items,
)
from personas.describe._reference import (
    class_keywords_loop,
    descriptive_keywords_loop,
    descriptive_texts_loop,
    distinctive_items_loop,
)

_WORDS = ["space", "Aliens", "ship", "love", "Comedies", "comedy", "star", "wars", "the", "of", "id4", "tea"]
_ENDS = ["", ".", ". ", "; ", ", ", "!", "\n", " (noir) ", ": ", "a.b", "<br>", " http://x.org/a "]


def _text(rng: np.random.Generator, most: int = 12) -> str:
    pieces = [str(rng.choice(_WORDS)) + str(rng.choice(_ENDS)) for _ in range(int(rng.integers(0, most)))]
    return "".join(pieces)


def _dataset(seed: int, *, chinese: bool = False, n_users: int = 80, n_items: int = 30) -> Dataset:
    rng = np.random.default_rng(seed)
    n = n_users * 6
    users = rng.integers(0, n_users - 4, size=n)  # the last four users have no interactions
    ratings = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0, np.nan], size=n)
    ratings[users % 7 == 1] = 2.0  # users who never rated high: all their items count
    inter = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in users],
            "item_id": [f"i{i}" for i in rng.integers(0, n_items, size=n)],  # repeats: the same item twice
            "rating": ratings,
            "timestamp": rng.integers(0, 30, size=n),
            "review": [None if rng.random() < 0.7 else _text(rng) for _ in range(n)],
        }
    )
    own = [None if rng.random() < 0.6 else _text(rng, 20) for _ in range(n_users)]
    own[1] = "   "  # present but blank
    if chinese:
        for row in (2, 5, 8, 14):  # all in group 2
            own[row] = "我喜欢科幻电影和太空飞船。"
    frame_users = pd.DataFrame(
        {"user_id": [f"u{u}" for u in range(n_users)], "text": own, "gender": rng.choice(["M", "F"], size=n_users)}
    )
    genres = ["Sci-Fi|Action", "Comedy|Romance", "Romance|Comedies", "Drama", None, "Star Wars|Sci-Fi", " "]
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "title": [f"Film {i} Day" for i in range(n_items)],
            "genres": [genres[i % len(genres)] for i in range(n_items)],
            "text": [None if i % 4 == 0 else _text(rng, 15) for i in range(n_items)],
        }
    )
    tag_users = rng.integers(0, n_users, size=60)
    tags = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in tag_users],
            "item_id": [f"i{i}" for i in rng.integers(0, 6, size=60)],  # few items: tags given by 2+ users
            "tag": rng.choice(["funny", "Dark", "slow burn", "funny", "u3", "<b>noir</b>"], size=60),
        }
    )
    return Dataset.from_frames(inter, users=frame_users, items=items, tags=tags)


def _labels(dataset: Dataset, n_groups: int = 3) -> np.ndarray:
    labels = np.arange(dataset.n_users) % n_groups
    labels[::11] = -1  # noise rows count only in the corpus
    return labels


def _ids(dataset: Dataset) -> list[str]:
    return [str(i) for i in (*dataset.user_vocab.ids, *dataset.item_vocab.ids)]


CONFIGS = [
    KeywordConfig(),
    KeywordConfig(min_df=1, max_df=0.3, n_keywords=20),  # boilerplate pass
    KeywordConfig(min_df=1, ngram_max=3, extra_stop_words=("Space",), min_support=0.0, min_lift=0.0),
    KeywordConfig(min_df=3, fold_plurals=False, merge_ngrams=False, digit_words=True, min_contrast=0.0),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("min_rating", [4.0, None, 2.5])
def test_descriptive_texts_are_the_loops(seed: int, min_rating: float | None) -> None:
    dataset = _dataset(seed)
    assert descriptive_texts(dataset, min_rating=min_rating) == descriptive_texts_loop(dataset, min_rating=min_rating)


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "boilerplate", "trigrams", "unfolded"])
@pytest.mark.parametrize("seed", [0, 1])
def test_descriptive_keywords_are_count_vectorizers_over_the_texts(seed: int, config: KeywordConfig) -> None:
    dataset = _dataset(seed)
    labels = _labels(dataset)
    for min_rating in (4.0, None):
        fast = descriptive_keywords(dataset, labels, 3, config, min_rating=min_rating, ids=_ids(dataset))
        slow = descriptive_keywords_loop(dataset, labels, 3, config, min_rating=min_rating, ids=_ids(dataset))
        assert fast == slow  # terms, order, and every number to the last bit
        assert fast is not None and sum(len(k) for k in fast) >= 3  # not an empty agreement


def test_chinese_descriptive_words_are_segmented_like_the_texts() -> None:
    dataset = _dataset(3, chinese=True)
    labels = _labels(dataset)
    config = KeywordConfig(min_df=1, min_support=0.0, n_keywords=40)
    fast = descriptive_keywords(dataset, labels, 3, config, ids=_ids(dataset))
    assert fast == descriptive_keywords_loop(dataset, labels, 3, config, ids=_ids(dataset))
    assert fast is not None and "太空 飞船" in {k.term for k in fast[2]}  # segmented: 太空 飞船


def test_no_descriptive_words_gives_none_and_describe_falls_back_to_the_texts() -> None:
    inter = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "item_id": ["x", "y", "x", "y"]})
    dataset = Dataset.from_frames(inter)
    labels = np.array([0, 0, 1, 1])
    assert descriptive_keywords(dataset, labels, 2) is None
    texts = ["space ships", "space aliens", "love tea", "tea love"]
    config = DescribeConfig(keywords=KeywordConfig(min_df=1))
    personas = describe_groups(labels, texts=texts, dataset=dataset, config=config)
    assert "space" in {k.term for k in personas[0].keywords}
    assert personas[0].keywords == class_keywords_loop(texts, labels, 2, config.keywords, ids=_ids(dataset))[0]


def test_class_keywords_on_texts_are_count_vectorizers() -> None:
    rng = np.random.default_rng(5)
    texts: list[str | None] = [_text(rng, 30) for _ in range(120)]
    texts += ["Raiders of the Lost Ark; good will hunting. The Wizard of Oz, (musical) sci-fi: star wars", "  ", None]
    labels = np.arange(len(texts)) % 4
    labels[::9] = -1
    for config in CONFIGS:
        fast = class_keywords(texts, labels, 4, config, ids=["u7"])
        assert fast == class_keywords_loop(texts, labels, 4, config, ids=["u7"])
        assert sum(len(k) for k in fast) >= 3
    assert class_keywords(["", None, "the a"], np.array([0, 0, 1]), 2) == [[], []]


@pytest.mark.parametrize("min_rating", [4.0, None])
def test_distinctive_items_are_the_loops(min_rating: float | None) -> None:
    dataset = _dataset(4, n_users=300)
    labels = _labels(dataset, 4)
    config = FactsConfig(min_item_users=2, min_item_share=0.05, min_rating=min_rating)
    fast = distinctive_items(dataset, labels, 4, config)
    assert fast == distinctive_items_loop(dataset, labels, 4, config)
    assert sum(len(items) for items in fast) >= 4


@pytest.mark.parametrize("seed", [0, 6])
def test_describe_groups_gives_the_cards_of_the_per_text_path(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = _dataset(seed, n_users=200)
    labels = _labels(dataset, 4)
    vectors = np.random.default_rng(seed).normal(size=(dataset.n_users, 8))
    config = DescribeConfig(facts=FactsConfig(min_item_users=2, min_attribute_users=2))
    fast = describe_groups(labels, vectors=vectors, dataset=dataset, config=config)
    monkeypatch.setattr(_describe, "descriptive_keywords", descriptive_keywords_loop)
    monkeypatch.setattr(_describe, "distinctive_items", distinctive_items_loop)
    slow = describe_groups(labels, vectors=vectors, dataset=dataset, config=config)
    assert [p.model_dump() for p in fast] == [p.model_dump() for p in slow]
    assert all(p.keywords for p in fast) and len({p.name for p in fast}) == 4


def test_users_who_wrote_nothing_are_quoted_with_nothing_as_build_profiles_says() -> None:
    from personas.data import ProfileConfig, build_profiles
    from personas.describe._describe import own_words

    rated = Dataset.from_frames(pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "rating": [5.0, 1.0]}))
    assert own_words(rated) == build_profiles(rated, ProfileConfig(parts=("text", "reviews"))) == ["", ""]
    written = _dataset(0)
    assert own_words(written) == build_profiles(written, ProfileConfig(parts=("text", "reviews")))
    assert any(own_words(written))


def test_own_texts_are_the_datasets_user_texts() -> None:
    from personas.describe.keywords import own_texts

    dataset = _dataset(1)
    expected = {row: text for row, text in enumerate(dataset.user_texts()) if text is not None}
    assert own_texts(dataset) == expected and "   " in expected.values()
    users = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "text": [None, "", float("nan"), "hi"]})
    inter = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "item_id": ["x"] * 4})
    assert own_texts(Dataset.from_frames(inter, users=users)) == {3: "hi"}
