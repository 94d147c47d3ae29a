"""Metrics on hand-computed cases, and the vectorised metrics agree with the one-list definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from personas.data import Dataset
from personas.errors import ConfigError
from personas.evaluate import (
    MAP,
    MRR,
    NDCG,
    Coverage,
    HitRate,
    IntraListDiversity,
    MetricContext,
    Novelty,
    Precision,
    Recall,
    parse_metric,
)
from personas.evaluate.metrics import (
    average_precision_at_k,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank_at_k,
)

# Ranked list [3, 1, 7, 2], relevant {1, 2, 9}: hits at positions 2 and 4.
RANKED = [3, 1, 7, 2]
RELEVANT = {1, 2, 9}


def test_ndcg_hand_computed() -> None:
    dcg = 1 / math.log2(3) + 1 / math.log2(5)  # 0.6309 + 0.4307
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)  # three relevant, k=4: ideal fills the first three
    assert ndcg_at_k(RANKED, RELEVANT, 4) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(RANKED, RELEVANT, 4) == pytest.approx(0.498189, abs=1e-6)
    # k=2: one hit at rank 2; ideal has two hits.
    assert ndcg_at_k(RANKED, RELEVANT, 2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert ndcg_at_k([1, 2, 9], RELEVANT, 3) == pytest.approx(1.0)
    assert ndcg_at_k([4, 5], RELEVANT, 2) == 0.0


def test_other_metrics_hand_computed() -> None:
    assert recall_at_k(RANKED, RELEVANT, 4) == pytest.approx(2 / 3)
    assert precision_at_k(RANKED, RELEVANT, 4) == pytest.approx(0.5)
    assert hit_rate_at_k(RANKED, RELEVANT, 1) == 0.0
    assert hit_rate_at_k(RANKED, RELEVANT, 2) == 1.0
    assert reciprocal_rank_at_k(RANKED, RELEVANT, 4) == pytest.approx(0.5)
    # AP@4 = (P@2 + P@4) / min(3, 4) = (1/2 + 2/4) / 3
    assert average_precision_at_k(RANKED, RELEVANT, 4) == pytest.approx(1 / 3)


def _ctx(n_items: int, n_users: int = 10) -> MetricContext:
    import pandas as pd

    inter = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)], "item_id": ["i0"] * n_users})
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)]})
    return MetricContext.build(Dataset.from_frames(inter, items=items))


def test_vectorised_metrics_agree_with_one_list_definitions() -> None:
    rng = np.random.default_rng(0)
    n_items, k = 30, 10
    ranked = np.vstack([rng.permutation(n_items)[:k] for _ in range(50)])
    relevant = [set(rng.choice(n_items, size=rng.integers(1, 15), replace=False).tolist()) for _ in range(50)]
    hits = np.array([[i in rel for i in row] for row, rel in zip(ranked, relevant, strict=True)])
    n_rel = np.array([len(r) for r in relevant])
    ctx = _ctx(n_items)
    pairs = [
        (Recall(k), recall_at_k),
        (Precision(k), precision_at_k),
        (HitRate(k), hit_rate_at_k),
        (NDCG(k), ndcg_at_k),
        (MRR(k), reciprocal_rank_at_k),
        (MAP(k), average_precision_at_k),
        (NDCG(3), ndcg_at_k),
    ]
    for metric, reference in pairs:
        got = metric.per_user(ranked, hits, n_rel, ctx)
        want = [reference(list(row), rel, metric.k) for row, rel in zip(ranked, relevant, strict=True)]
        np.testing.assert_allclose(got, want, err_msg=metric.name)


def test_padding_never_counts() -> None:
    ranked = np.array([[1, -1, -1]])
    hits = np.array([[True, False, False]])
    ctx = _ctx(5)
    assert Precision(3).per_user(ranked, hits, np.array([1]), ctx)[0] == pytest.approx(1 / 3)
    assert NDCG(3).per_user(ranked, hits, np.array([1]), ctx)[0] == pytest.approx(1.0)
    assert Coverage(3).overall(ranked, None, ctx) == pytest.approx(1 / 5)


def test_novelty_prefers_rare_items_and_diversity_counts_distinct_genres() -> None:
    import pandas as pd

    inter = pd.DataFrame({"user_id": ["a", "b", "c", "a"], "item_id": ["x", "x", "x", "y"]})
    items = pd.DataFrame({"item_id": ["x", "y", "z"], "genres": ["Drama", "Drama", "Comedy"]})
    ctx = MetricContext.build(Dataset.from_frames(inter, items=items))
    popular, rare = np.array([[0]]), np.array([[2]])
    nov = Novelty(1)
    none = np.zeros((1, 1), bool)
    assert nov.per_user(rare, none, np.array([1]), ctx)[0] > nov.per_user(popular, none, np.array([1]), ctx)[0]
    # -log2((3 + 1) / (3 + 1)) = 0 for an item every user has.
    assert nov.per_user(popular, none, np.array([1]), ctx)[0] == pytest.approx(0.0)
    ild = IntraListDiversity(2)
    same, mixed = np.array([[0, 1]]), np.array([[0, 2]])
    none2 = np.zeros((1, 2), bool)
    assert ild.per_user(same, none2, np.array([1]), ctx)[0] == pytest.approx(0.0)
    assert ild.per_user(mixed, none2, np.array([1]), ctx)[0] == pytest.approx(1.0)


def test_parse_metric() -> None:
    assert parse_metric("ndcg@10").name == "NDCG@10"
    assert isinstance(parse_metric("ILD@5"), IntraListDiversity)
    with pytest.raises(ConfigError, match="Unknown metric 'foo@3'"):
        parse_metric("foo@3")
    with pytest.raises(ConfigError, match="'k' parameter of Recall must be an int >= 1"):
        Recall(0)
