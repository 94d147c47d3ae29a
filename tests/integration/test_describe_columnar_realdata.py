"""The columnar describe path agrees with the per-text path on MovieLens (marked realdata): for every persona
the same keywords (terms, order and numbers), the same names and the same facts, on ml-100k (genres, ratings,
demographics) and ml-latest-small (users' tags, items' tags)."""

from __future__ import annotations

import numpy as np
import pytest

from personas.data import Dataset, build_profiles
from personas.describe import _describe, describe_groups, descriptive_texts
from personas.describe._reference import descriptive_keywords_loop, descriptive_texts_loop, distinctive_items_loop
from personas.discover import KMeansGroups
from personas.encode import TfidfEncoder

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize("name", ["ml100k", "ml_latest_small"])
def test_same_personas_as_the_per_text_path(name: str, request: pytest.FixtureRequest, monkeypatch) -> None:
    dataset: Dataset = request.getfixturevalue(name)
    assert descriptive_texts(dataset) == descriptive_texts_loop(dataset)
    texts = build_profiles(dataset)
    vectors = TfidfEncoder().fit(texts).encode(texts)
    labels = KMeansGroups(k=8, seed=0).fit(vectors).labels_
    labels = np.where(np.arange(len(labels)) % 50 == 0, -1, labels)  # a few noise rows
    fast = describe_groups(labels, texts=texts, vectors=vectors, dataset=dataset)
    monkeypatch.setattr(_describe, "descriptive_keywords", descriptive_keywords_loop)
    monkeypatch.setattr(_describe, "distinctive_items", distinctive_items_loop)
    slow = describe_groups(labels, texts=texts, vectors=vectors, dataset=dataset)
    assert len(fast) == 8
    for new, old in zip(fast, slow, strict=True):
        assert new.keywords == old.keywords  # terms, order, scores, contrasts, lifts, supports
        assert (new.name, new.keyword_name, new.name_facts) == (old.name, old.keyword_name, old.name_facts)
        assert new.model_dump() == old.model_dump()  # and every other fact on the card
    assert sum(bool(p.keywords) for p in fast) >= 6 and all(p.distinctive_items for p in fast)  # not vacuous
