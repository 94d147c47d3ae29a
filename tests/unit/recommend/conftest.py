"""Small hand-made datasets for the recommender unit tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset


def make_dataset(
    pairs: list[tuple[str, str]],
    *,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    name: str = "hand",
) -> Dataset:
    inter = pd.DataFrame(pairs, columns=["user_id", "item_id"])
    inter["rating"] = 5.0
    inter["timestamp"] = np.arange(len(pairs))
    return Dataset.from_frames(inter, items=items, users=users, name=name)


@pytest.fixture
def build() -> Callable[..., Dataset]:
    """``build(pairs, items=None, users=None)``: a dataset from (user, item) pairs in time order."""
    return make_dataset


@pytest.fixture
def hand() -> Dataset:
    """Four users, four items: u1 {a, b}, u2 {a, b, c}, u3 {c, d}, u4 {d}."""
    return make_dataset(
        [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u2", "c"), ("u3", "c"), ("u3", "d"), ("u4", "d")]
    )


@pytest.fixture
def synthetic() -> tuple[Dataset, np.ndarray]:
    """60 users in three taste groups over 30 items (10 per group), 8 items each, mostly in their group's
    block; returns the dataset and the true group labels."""
    rng = np.random.default_rng(7)
    pairs, labels = [], []
    for u in range(60):
        g = u % 3
        labels.append(g)
        own = rng.choice(np.arange(10 * g, 10 * g + 10), size=7, replace=False)
        other = rng.choice(np.setdiff1d(np.arange(30), own), size=1)
        pairs += [(f"u{u:02d}", f"i{int(i):02d}") for i in [*own, *other]]
    dataset = make_dataset(pairs, name="synthetic")
    order = [int(uid[1:]) for uid in dataset.user_vocab.ids]
    return dataset, np.array([labels[i] for i in order], dtype=np.int64)
