from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset, Vocabulary
from personas.errors import DataError, UnknownIdError


def test_vocabulary_maps_both_ways() -> None:
    vocab = Vocabulary(["b", 7, "a"], kind="user")
    assert len(vocab) == 3 and "7" in vocab and 7 in vocab
    assert vocab.row("a") == 2 and vocab.id(1) == "7"
    assert vocab.rows(["a", "zz", "b"], missing="mask").tolist() == [2, -1, 0]
    with pytest.raises(UnknownIdError, match="Unknown user id 'zz'") as info:
        vocab.row("zz")
    assert isinstance(info.value, KeyError)
    with pytest.raises(DataError, match="Duplicate user id 'a'"):
        Vocabulary(["a", "a"], kind="user")


def test_matrix_values(tiny: Dataset) -> None:
    binary = tiny.matrix("binary")
    assert binary.shape == (6, 6) and binary.nnz == tiny.n_interactions
    u1, d = tiny.user_vocab.row("u1"), tiny.item_vocab.row("d")
    assert tiny.matrix("rating")[u1, d] == 1.0
    assert binary[u1].toarray().ravel().tolist() == [1, 1, 1, 1, 0, 0]


def test_latest_rating_wins_and_count_counts() -> None:
    inter = pd.DataFrame(
        {"user_id": ["u", "u", "u"], "item_id": ["i", "i", "j"], "rating": [5.0, 2.0, 3.0], "timestamp": [20, 10, 5]}
    )
    ds = Dataset.from_frames(inter)
    assert ds.matrix("rating").toarray().tolist() == [[5.0, 3.0]]  # timestamp 20 is the latest for (u, i)
    assert ds.matrix("count").toarray().tolist() == [[2.0, 1.0]]
    with pytest.raises(DataError, match="no ratings"):
        Dataset.from_frames(inter.drop(columns="rating")).matrix("rating")


def test_dataset_is_immutable(tiny: Dataset) -> None:
    with pytest.raises(ValueError, match="read-only"):
        tiny.ratings[0] = 3.0
    with pytest.raises(AttributeError):
        tiny.name = "other"  # type: ignore[misc]
    users = tiny.users
    users.loc[0, "text"] = "changed"
    assert tiny.user_texts()[0] == "I love space opera"


def test_fingerprint_and_subset(tiny: Dataset) -> None:
    assert (
        tiny.fingerprint() == Dataset.from_frames(tiny.interactions(), users=tiny.users, items=tiny.items).fingerprint()
    )
    half = tiny.subset_interactions(np.arange(tiny.n_interactions) % 2 == 0)
    assert half.n_users == tiny.n_users and half.n_interactions == (tiny.n_interactions + 1) // 2
    assert half.fingerprint() != tiny.fingerprint()
    with pytest.raises(DataError, match="Mask has shape"):
        tiny.subset_interactions(np.ones(3, dtype=bool))


def test_items_only_in_interactions_are_added() -> None:
    inter = pd.DataFrame({"user_id": ["u"], "item_id": ["new"]})
    items = pd.DataFrame({"item_id": ["old"], "title": ["Old"]})
    ds = Dataset.from_frames(inter, items=items)
    assert list(ds.item_vocab.ids) == ["old", "new"]
    assert ds.items["title"].tolist()[0] == "Old"
