"""Synthetic data with known structure for evaluation tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset


def make_synthetic(n_users: int = 60, n_items: int = 40, per_user: int = 12, seed: int = 0) -> Dataset:
    """Two tastes (even users like the first half of items, odd users the second), timestamps increasing
    per user, a few users with only 3 interactions (they must stay train-only in the temporal split)."""
    rng = np.random.default_rng(seed)
    rows = []
    half = n_items // 2
    for u in range(n_users):
        pool = np.arange(half) if u % 2 == 0 else np.arange(half, n_items)
        count = 3 if u % 10 == 9 else per_user
        items = rng.choice(pool, size=min(count, len(pool)), replace=False)
        for t, i in enumerate(items):
            rows.append((f"u{u}", f"i{i}", float(rng.integers(1, 6)), 1000 * u + t))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    users = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in range(n_users)],
            "text": ["space opera fan" if u % 2 == 0 else "romance reader" for u in range(n_users)],
        }
    )
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "title": [f"Item {i}" for i in range(n_items)],
            "genres": ["Sci-Fi" if i < half else "Romance" for i in range(n_items)],
        }
    )
    return Dataset.from_frames(inter, users=users, items=items, name="synthetic")


@pytest.fixture
def synthetic() -> Dataset:
    return make_synthetic()
