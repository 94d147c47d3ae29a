"""Cold users whose only input is their own tags, on ml-latest-small (real data): who is held out, how much
of their tag text names the answer, and that none of it reaches train."""

from __future__ import annotations

import numpy as np
import pytest

from personas.data import Dataset, item_documents
from personas.evaluate.splits import ColdTaggers

pytestmark = pytest.mark.realdata


def test_cold_taggers_on_ml_latest_small(ml_latest_small: Dataset) -> None:
    tags = ml_latest_small.tags
    assert tags is not None and tags["user"].nunique() == 61
    keep = ColdTaggers(seed=0).split(ml_latest_small)
    drop = ColdTaggers(held_tags="drop", seed=0).split(ml_latest_small)
    assert len(keep.users) == 30 and np.array_equal(keep.users, drop.users)
    assert keep.revealed_text is not None and drop.revealed_text is not None
    assert all(keep.revealed_text.values()) and len(keep.revealed_text) == len(drop.revealed_text) == 30
    assert sum(1 for text in drop.revealed_text.values() if text) == 8  # most tagged only what they took
    train_tags = keep.train.tags
    assert train_tags is not None and not train_tags["user"].isin(keep.users).any()
    assert len(train_tags) + int(tags["user"].isin(keep.users).sum()) == len(tags)
    # Item texts built from train differ from the full data's exactly where a held-out user tagged the item.
    before, after = item_documents(ml_latest_small), item_documents(keep.train)
    changed = {i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b}
    tagged_by_held = set(tags.loc[tags["user"].isin(keep.users), "item"]) - {-1}
    assert changed and changed <= tagged_by_held
    # About two thirds of all tags are on a movie their writer rated (the figure).
    rated = ml_latest_small.matrix("binary")
    known = tags["item"].to_numpy() >= 0
    on_rated = np.asarray(rated[tags["user"].to_numpy()[known], tags["item"].to_numpy()[known]]).ravel() > 0
    assert 0.55 < on_rated.sum() / len(tags) < 0.8
