"""Cold users whose only input is their own tags: the tag-text user-kNN peer, the ColdTaggers split (who is
held out, which tags each variant keeps, nothing of theirs in train) and the protocol's wiring."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset
from personas.errors import ConfigError
from personas.evaluate.peers import TextUserKNN


class _Words:
    """A fake sentence encoder: one axis per keyword (space, romance), unit length."""

    name = "words"
    dim = 2

    def encode(self, texts: Sequence[str], **_: object) -> np.ndarray:
        out = np.array([[t.count("space"), t.count("romance")] for t in texts], dtype=np.float64) + 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class _WordUserKNN(TextUserKNN):
    def _encoder(self) -> _Words:
        return _Words()


def _two_tastes() -> Dataset:
    """u0..u3 say 'space' and took s-items, u4..u7 say 'romance' and took r-items; r1 is the most popular."""
    rows = [(f"u{u}", f"s{i}") for u in range(4) for i in range(2)]
    rows += [(f"u{u}", f"r{i}") for u in range(4, 8) for i in range(3)]
    users = pd.DataFrame(
        {"user_id": [f"u{u}" for u in range(8)], "text": ["space" if u < 4 else "romance" for u in range(8)]}
    )
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id"]), users=users)


def test_text_user_knn_votes_with_the_users_whose_side_text_is_alike() -> None:
    dataset = _two_tastes()
    model = _WordUserKNN(k=3).fit(dataset)
    rec = model.recommend_new(text="I love space", n=2)
    assert {dataset.item_vocab.id(int(i)) for i in rec.ids[0]} == {"s0", "s1"}
    rec = model.recommend_new(text="romance please", n=3)
    assert {dataset.item_vocab.id(int(i)) for i in rec.ids[0]} == {"r0", "r1", "r2"}
    # No words: global popularity (the r-items, taken by four users each... and s-items by four too: any top).
    none = model.recommend_new(n=3)
    assert np.allclose(none.scores[0], model.popularity_[none.ids[0]])
    # A known user is scored by the others' vote, never their own items alone.
    warm = model.recommend(["u0"], 2, exclude_seen=False)
    assert {dataset.item_vocab.id(int(i)) for i in warm.ids[0]} == {"s0", "s1"}


def test_text_user_knn_rejects_k_below_one() -> None:
    with pytest.raises(ConfigError, match="The 'k' parameter of TextUserKNN must be an int >= 1. Got 0 instead."):
        TextUserKNN(k=0)
