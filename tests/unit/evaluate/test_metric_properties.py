"""Properties of the one-list ranking metrics (personas.evaluate.metrics), and the vectorised layer agreeing
with them on any batch.

Conventions from the source: relevance is binary; -1 is padding and never counts; Precision divides by k
even when the list is shorter; Recall divides by all relevant items; NDCG and MAP normalise by the best list
of length min(|relevant|, k); every metric is 0 for a user with no relevant item.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personas.data import Dataset
from personas.evaluate import MAP, MRR, NDCG, HitRate, Metric, MetricContext, Precision, Recall
from personas.evaluate.metrics import (
    average_precision_at_k,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank_at_k,
)

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None)

OneList = Callable[[Sequence[int], Collection[int], int], float]
ALL: dict[str, OneList] = {
    "recall": recall_at_k,
    "precision": precision_at_k,
    "hit_rate": hit_rate_at_k,
    "ndcg": ndcg_at_k,
    "reciprocal_rank": reciprocal_rank_at_k,
    "average_precision": average_precision_at_k,
}
# Metrics that reward a relevant item more the higher it is ranked (the others only count hits in the top k).
POSITION_AWARE = ("ndcg", "reciprocal_rank", "average_precision")
N_ITEMS = 25

ITEMS = st.integers(0, N_ITEMS - 1)
RANKED = st.lists(ITEMS, max_size=15, unique=True)  # a ranked list holds each item once
RELEVANT = st.sets(ITEMS, max_size=12)
K = st.integers(1, 20)


def _hits(ranked: Sequence[int], relevant: Collection[int], k: int) -> int:
    return sum(i in relevant for i in ranked[:k])


@given(RANKED, RELEVANT, K, st.integers(0, 5))
@PROPERTY
def test_every_metric_is_in_0_1_and_ignores_items_beyond_k_and_padding(
    ranked: list[int], relevant: set[int], k: int, n_padding: int
) -> None:
    padded = [*ranked, *([-1] * n_padding)]  # top_n pads short lists with -1
    for name, metric in ALL.items():
        value = metric(ranked, relevant, k)
        assert 0.0 <= value <= 1.0 + 1e-12, name
        assert metric(ranked[:k], relevant, k) == value, name
        assert metric(padded, relevant, k) == value, name


@given(RANKED, RELEVANT, K)
@PROPERTY
def test_counting_metrics_follow_from_the_hits_in_the_top_k(ranked: list[int], relevant: set[int], k: int) -> None:
    hits = _hits(ranked, relevant, k)
    assert precision_at_k(ranked, relevant, k) * k == pytest.approx(hits)  # / k, also when the list is shorter
    assert hit_rate_at_k(ranked, relevant, k) == float(hits > 0)
    if relevant:
        assert recall_at_k(ranked, relevant, k) * len(relevant) == pytest.approx(hits)
        # hence recall * |relevant| = precision * k
        assert recall_at_k(ranked, relevant, k) * len(relevant) == pytest.approx(
            precision_at_k(ranked, relevant, k) * k
        )
    if hits == 0:
        assert all(metric(ranked, relevant, k) == 0.0 for metric in ALL.values())


@given(RANKED, K)
@PROPERTY
def test_a_user_without_relevant_items_scores_0_everywhere(ranked: list[int], k: int) -> None:
    for name, metric in ALL.items():
        assert metric(ranked, set(), k) == 0.0, name


@given(RELEVANT.filter(bool), st.lists(ITEMS, max_size=10, unique=True), K)
@PROPERTY
def test_the_perfect_ranking_scores_1(relevant: set[int], others: list[int], k: int) -> None:
    """Relevant items first (any order), then the rest; |relevant| may exceed k."""
    ranked = [*sorted(relevant, reverse=True), *(i for i in others if i not in relevant)]
    for name in ("hit_rate", *POSITION_AWARE):
        assert ALL[name](ranked, relevant, k) == pytest.approx(1.0), name
    best = min(len(relevant), k)
    assert recall_at_k(ranked, relevant, k) == pytest.approx(best / len(relevant))
    assert precision_at_k(ranked, relevant, k) == pytest.approx(best / k)


@st.composite
def swaps(draw: st.DrawFn) -> tuple[list[int], set[int], int, int, int]:
    """(ranked, relevant, k, i, j): position i < j holds a non-relevant item, position j a relevant one."""
    ranked = draw(st.lists(ITEMS, min_size=2, max_size=15, unique=True))
    j = draw(st.integers(1, len(ranked) - 1))
    i = draw(st.integers(0, j - 1))
    rest = draw(st.sets(ITEMS, max_size=8))
    relevant = (rest - {ranked[i]}) | {ranked[j]}
    return ranked, relevant, draw(K), i, j


@given(swaps())
@PROPERTY
def test_moving_a_relevant_item_up_never_lowers_a_metric(problem: tuple[list[int], set[int], int, int, int]) -> None:
    ranked, relevant, k, i, j = problem
    better = list(ranked)
    better[i], better[j] = better[j], better[i]
    for name, metric in ALL.items():
        assert metric(better, relevant, k) >= metric(ranked, relevant, k), name
    if i < k:  # the relevant item lands in the top k: NDCG and AP strictly gain
        assert ndcg_at_k(better, relevant, k) > ndcg_at_k(ranked, relevant, k)
        assert average_precision_at_k(better, relevant, k) > average_precision_at_k(ranked, relevant, k)


# ---------------------------------------------------------------------- the vectorised layer
@pytest.fixture(scope="module")
def context() -> MetricContext:
    """The accuracy metrics do not read the context; a small real one keeps the call honest."""
    inter = pd.DataFrame({"user_id": ["u0", "u1"], "item_id": ["i0", "i1"]})
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(N_ITEMS)]})
    return MetricContext.build(Dataset.from_frames(inter, items=items))


@given(
    st.lists(st.tuples(st.lists(ITEMS, min_size=1, max_size=10, unique=True), RELEVANT), min_size=1, max_size=8),
    st.integers(1, 12),
)
@PROPERTY
def test_vectorised_metrics_agree_with_the_one_list_definitions_on_any_batch(
    context: MetricContext, users: list[tuple[list[int], set[int]]], k: int
) -> None:
    """Padded rows of equal length, as Experiment builds them (-1 padding, hits False there)."""
    width = max(len(ranked) for ranked, _ in users)
    ranked = np.array([[*r, *([-1] * (width - len(r)))] for r, _ in users], dtype=np.int64)
    hits = np.array([[int(i) in rel for i in row] for row, (_, rel) in zip(ranked, users, strict=True)])
    n_relevant = np.array([len(rel) for _, rel in users])
    pairs: list[tuple[Metric, OneList]] = [
        (Recall(k), recall_at_k),
        (Precision(k), precision_at_k),
        (HitRate(k), hit_rate_at_k),
        (NDCG(k), ndcg_at_k),
        (MRR(k), reciprocal_rank_at_k),
        (MAP(k), average_precision_at_k),
    ]
    for metric, reference in pairs:
        got = metric.per_user(ranked, hits, n_relevant, context)
        want = [reference(row.tolist(), rel, k) for row, (_, rel) in zip(ranked, users, strict=True)]
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-12, err_msg=metric.name)
