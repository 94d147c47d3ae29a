"""Whole protocols on tiny data: every default model, deterministic under the seed; shared work done once."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset
from personas.evaluate import NDCG, ColdUsers, TemporalSplit, evaluate_model
from personas.evaluate._memo import DatasetMemo
from personas.evaluate.protocols import DEFAULT_MODELS, group_source, run_protocol
from personas.recommend import FitInputs, Recommender


def _summary(results: list) -> list:
    return [
        (label, [(r.name, r.tuned, r.overall, {k: v.tolist() for k, v in r.per_user.items()}) for r in res.runs])
        for label, res in results
    ]


def test_a_whole_protocol_with_every_default_model_is_deterministic(synthetic: Dataset) -> None:
    # n_groups=2: the group source is still chosen on validation, among three sources (not nine trials).
    first = run_protocol(synthetic, "cold-users", n_groups=2, seed=0)
    second = run_protocol(synthetic, "cold-users", n_groups=2, seed=0)
    assert [r.name for r in first[0][1].runs] == list(DEFAULT_MODELS)
    assert _summary(first) == _summary(second)
    assert first[0][1].notes == second[0][1].notes
    # Every held-out user has side text here ("space opera fan" / "romance reader"), and the table says so.
    split = ColdUsers(seed=0).split(synthetic)
    n = len(split.users)
    note = f"{n} of {n} test users have no train history; {n} of them have side text"
    assert any(note in line for line in first[0][1].notes)


def test_validation_split_is_made_once_and_labels_once_per_train_set(synthetic: Dataset) -> None:
    split = TemporalSplit().split(synthetic)
    assert split.validation() is split.validation()
    calls: list[Dataset] = []

    def count(ds: Dataset) -> int:
        calls.append(ds)
        return ds.n_interactions

    memo = DatasetMemo(count, size=2)
    val = split.validation()
    assert [memo(split.train), memo(val.train), memo(split.train)] == [
        split.train.n_interactions,
        val.train.n_interactions,
        split.train.n_interactions,
    ]
    assert calls == [split.train, val.train]
    # A dataset equal in content but another object is computed again (identity, not a reusable id).
    again = TemporalSplit().split(synthetic)
    memo(again.train)
    assert len(calls) == 3
    source = group_source("behaviour", 2, 0)
    assert source is group_source("behaviour", 2, 0)
    labels = source(split.train)
    assert source(split.train) is labels
    with pytest.raises(ValueError, match="read-only"):
        labels[0] = 5  # shared by every model fitted on the train set: read-only


class FixedOrder(Recommender):
    """Scores items by a fixed order given as item ids (first = highest), for every user."""

    order: tuple[str, ...] = ()

    def _fit(self, inputs: FitInputs) -> None:
        dataset = inputs.dataset
        self.scores_ = np.zeros(dataset.n_items)
        for rank, item in enumerate(self.order):
            self.scores_[dataset.item_vocab.row(item)] = len(self.order) - rank

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return np.tile(self.scores_, (len(user_rows), 1))


def test_ndcg_through_the_experiment_matches_a_hand_computed_value() -> None:
    # One user: train a (masked), test b and d; the model ranks a > c > b > e > d.
    rows = [("u", "a", 1), ("u", "b", 2), ("u", "d", 3), ("v", "c", 1), ("v", "e", 2)]
    rows += [("w", i, t) for t, i in enumerate("abcde")]
    ds = Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))
    split = TemporalSplit(test_fraction=0.6, min_interactions=3).split(ds)
    u = ds.user_vocab.row("u")
    assert split.test.matrix("binary")[u].indices.tolist() == sorted(ds.item_vocab.rows(["b", "d"]).tolist())
    model = FixedOrder()
    model.order = ("a", "c", "b", "e", "d")
    model.fit(split.train)
    per_user, _, _ = evaluate_model(model, split, [NDCG(3)])
    # a is masked: the list is c, b, e -> one hit at rank 2; the ideal list has hits at ranks 1 and 2.
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    value = per_user["NDCG@3"][list(split.users).index(u)]
    assert value == pytest.approx(expected)
