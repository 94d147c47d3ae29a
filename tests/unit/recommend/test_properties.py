"""Properties of the ranking plumbing every recommender shares: ``top_n`` and the score-matrix metrics that
``fit`` tunes on, checked against plain references (a sort, the one-list metrics of personas.evaluate)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from personas.evaluate import metrics as one_list
from personas.holdout import ndcg_of_scores as matrix_ndcg_at_k  # the score-matrix metrics
from personas.holdout import recall_of_scores as matrix_recall_at_k
from personas.recommend.base import top_n

PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)

# A few values only, so that ties are frequent; -inf is a score no item can be recommended with.
SCORE = st.sampled_from([-np.inf, -2.0, -0.5, 0.0, 0.0, 1.0, 1.5, 3.0])


@st.composite
def score_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    """(scores u x items, excluded mask of the same shape, n)."""
    n_users = draw(st.integers(1, 5))
    n_items = draw(st.integers(0, 9))
    scores = draw(hnp.arrays(np.float64, (n_users, n_items), elements=SCORE | st.floats(-10, 10)))
    excluded = draw(hnp.arrays(np.bool_, (n_users, n_items)))
    if n_users > 1 and draw(st.booleans()):
        excluded[0, :] = True  # a row where everything is excluded
    return scores, excluded, draw(st.integers(0, n_items + 4))


@given(score_problems(), st.booleans())
@PROPERTY
def test_top_n_is_the_sorted_best_of_the_remaining_items(
    problem: tuple[np.ndarray, np.ndarray, int], mask: bool
) -> None:
    scores, excluded, n = problem
    if not mask:
        excluded = np.zeros_like(excluded)
    before = scores.copy()
    ids, best = top_n(scores, n, exclude=sp.csr_matrix(excluded) if mask else None)
    np.testing.assert_array_equal(scores, before)  # the caller's scores are not touched
    assert ids.shape == best.shape == (len(scores), n)
    assert ids.dtype == np.int64
    for row, row_ids, row_best, row_excluded in zip(scores, ids, best, excluded, strict=True):
        remaining = row[~row_excluded & np.isfinite(row)]
        m = min(n, len(remaining))
        # the scores are the top of a descending sort of the remaining items, then -inf padding
        np.testing.assert_array_equal(row_best[:m], np.sort(remaining)[::-1][:m])
        assert np.all(row_best[m:] == -np.inf)
        # ids: -1 exactly where the score is -inf (fewer than n items remain), else distinct remaining items
        np.testing.assert_array_equal(row_ids == -1, row_best == -np.inf)
        np.testing.assert_array_equal(row_ids[m:], -1)
        chosen = row_ids[:m]
        assert len(set(chosen.tolist())) == m
        assert ((chosen >= 0) & (chosen < len(row))).all()
        assert not row_excluded[chosen].any()
        np.testing.assert_array_equal(row[chosen], row_best[:m])


@given(score_problems())
@PROPERTY
def test_top_n_breaks_ties_the_same_way_every_time(problem: tuple[np.ndarray, np.ndarray, int]) -> None:
    scores, excluded, n = problem
    first = top_n(scores, n, exclude=sp.csr_matrix(excluded))
    again = top_n(scores.copy(), n, exclude=sp.csr_matrix(excluded.copy()))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [0, 1, 5])
def test_top_n_of_all_excluded_or_no_items_is_all_padding(n: int) -> None:
    for scores, exclude in [
        (np.ones((2, 3)), sp.csr_matrix(np.ones((2, 3)))),
        (np.zeros((2, 0)), sp.csr_matrix((2, 0))),
    ]:
        ids, best = top_n(scores, n, exclude=exclude)
        np.testing.assert_array_equal(ids, np.full((2, n), -1))
        np.testing.assert_array_equal(best, np.full((2, n), -np.inf))


# ---------------------------------------------------------------------- score-matrix metrics
@st.composite
def ranked_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    """(scores without ties within a row, relevant mask, k), k possibly beyond the number of items."""
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 12))
    scores = np.array([draw(st.permutations(range(n_items))) for _ in range(n_users)], dtype=np.float64) * 0.5 - draw(
        st.floats(-3, 3)
    )
    relevant = draw(hnp.arrays(np.bool_, (n_users, n_items)))
    return scores, relevant, draw(st.integers(1, n_items + 3))


OneList = Callable[[Sequence[int], Collection[int], int], float]


def _mean_of_one_list(metric: OneList, scores: np.ndarray, relevant: np.ndarray, k: int) -> float:
    values = [
        metric(np.argsort(-row).tolist(), set(np.flatnonzero(rel).tolist()), k)
        for row, rel in zip(scores, relevant, strict=True)
        if rel.any()
    ]
    return float(np.mean(values)) if values else 0.0


@given(ranked_problems())
@PROPERTY
def test_matrix_metrics_are_the_mean_of_the_one_list_metrics_over_users_with_relevant_items(
    problem: tuple[np.ndarray, np.ndarray, int],
) -> None:
    scores, relevant, k = problem
    pairs: list[tuple[Callable[[np.ndarray, np.ndarray | sp.csr_matrix, int], float], OneList]] = [
        (matrix_ndcg_at_k, one_list.ndcg_at_k),
        (matrix_recall_at_k, one_list.recall_at_k),
    ]
    for matrix_metric, reference in pairs:
        want = _mean_of_one_list(reference, scores, relevant, k)
        assert matrix_metric(scores, relevant, k) == pytest.approx(want, abs=1e-12)
        assert matrix_metric(scores, sp.csr_matrix(relevant), k) == pytest.approx(want, abs=1e-12)
