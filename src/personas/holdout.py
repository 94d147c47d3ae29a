"""Held-out data for choices made on training data: temporal hold-outs, score-matrix metrics, one tuning rule.

This module sits below both ``personas.recommend`` (models tune their weights inside ``fit``) and
``personas.evaluate`` (the protocols split test data the same way), so the two agree on what "the last part of
a user's history" means and on how a ranking is scored.

- :func:`time_rank`: each interaction's position in its user's history by time.
- :func:`temporal_holdout`: a mask keeping all but the last part of each user's history.
- :func:`first_n_split`: for chosen users, their first N items in time and the rest.
- :func:`ndcg_of_scores`, :func:`recall_of_scores`: mean NDCG@k / Recall@k of a users x items score matrix
  against a relevance matrix (the per-list metrics of :mod:`personas.evaluate.metrics` take one ranking).
- :func:`simplex_grid` and :func:`first_best`: the candidate weights of a blend and the rule that picks one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from personas.data import Dataset

__all__ = [
    "best_distinct",
    "first_best",
    "first_n_split",
    "held_counts",
    "list_overlap",
    "ndcg_of_scores",
    "recall_of_scores",
    "simplex_grid",
    "temporal_holdout",
    "time_rank",
]


def time_rank(dataset: Dataset, tie_order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each interaction, its 0-based position in its user's history by time, and each user's number of
    interactions. Equal timestamps are ordered by ``tie_order`` (one key per interaction; the evaluation
    passes a seeded permutation), else by file order."""
    ties = np.arange(dataset.n_interactions) if tie_order is None else tie_order
    order = np.lexsort((ties, dataset.timestamps, dataset.user_rows))
    counts = np.bincount(dataset.user_rows, minlength=dataset.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(dataset.n_interactions, dtype=np.int64)
    rank[order] = np.arange(dataset.n_interactions) - starts[dataset.user_rows[order]]
    return rank, counts


def held_counts(counts: np.ndarray, fraction: float, min_interactions: int, *, round_up: bool) -> np.ndarray:
    """How many of each user's last interactions are held out: ``fraction`` x the count rounded up, or
    (``round_up=False``, the warm protocol's rule) rounded to the nearest and at least one; 0 for users with
    fewer than ``min_interactions``."""
    held = np.ceil(counts * fraction) if round_up else np.maximum(1, np.rint(counts * fraction))
    return np.where(counts >= min_interactions, held.astype(np.int64), 0)


def temporal_holdout(
    dataset: Dataset, fraction: float, *, min_interactions: int = 5, round_up: bool = True
) -> np.ndarray:
    """A mask over interactions: False for the last ``fraction`` of each user's history (by time, then file
    order) among users with at least ``min_interactions``; True for everything else (see :func:`held_counts`
    for the rounding)."""
    rank, counts = time_rank(dataset)
    n_out = held_counts(counts, fraction, min_interactions, round_up=round_up)
    users = dataset.user_rows
    return rank < counts[users] - n_out[users]


def first_n_split(dataset: Dataset, users: np.ndarray, n: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Binary (len(users) x items) matrices of each user's first ``n`` items in time (then file order) and of
    the items they took later (an item taken again later counts as shown only). ``users`` must be sorted."""
    order = np.lexsort((np.arange(dataset.n_interactions), dataset.timestamps, dataset.user_rows))
    sorted_users = dataset.user_rows[order]
    starts = np.searchsorted(sorted_users, users)
    ends = np.searchsorted(sorted_users, users, side="right")
    shown_rows: list[int] = []
    shown_cols: list[int] = []
    rest_rows: list[int] = []
    rest_cols: list[int] = []
    for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
        items = dataset.item_rows[order[a:b]]
        first = np.unique(items[:n])
        later = np.setdiff1d(items[n:], first)
        shown_rows += [i] * len(first)
        shown_cols += first.tolist()
        rest_rows += [i] * len(later)
        rest_cols += later.tolist()
    shape = (len(users), dataset.n_items)
    shown = sp.csr_matrix((np.ones(len(shown_rows)), (shown_rows, shown_cols)), shape=shape)
    rest = sp.csr_matrix((np.ones(len(rest_rows)), (rest_rows, rest_cols)), shape=shape)
    return shown, rest


def _relevant_dense(relevant: sp.csr_matrix | np.ndarray) -> np.ndarray:
    return sp.csr_matrix(relevant).toarray() > 0 if sp.issparse(relevant) else np.asarray(relevant, dtype=bool)


def recall_of_scores(scores: np.ndarray, relevant: sp.csr_matrix | np.ndarray, k: int) -> float:
    """Mean over rows of |top-k ∩ relevant| / |relevant| for a users x items ``scores`` matrix (rows without
    relevant items are skipped; 0.0 when none has any)."""
    k = min(k, scores.shape[1])
    dense = _relevant_dense(relevant)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    hits = np.take_along_axis(dense, top, axis=1).sum(axis=1)
    n_rel = dense.sum(axis=1)
    ok = n_rel > 0
    return float((hits[ok] / n_rel[ok]).mean()) if ok.any() else 0.0


def ndcg_of_scores(scores: np.ndarray, relevant: sp.csr_matrix | np.ndarray, k: int) -> float:
    """Mean over rows of NDCG@k with binary relevance for a users x items ``scores`` matrix (rows without
    relevant items are skipped; 0.0 when none has any): the measure the evaluation tunes on, so that choices
    made inside ``fit`` aim at it."""
    k = min(k, scores.shape[1])
    dense = _relevant_dense(relevant)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    hits = np.take_along_axis(dense, np.take_along_axis(top, order, axis=1), axis=1)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    n_rel = dense.sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(n_rel, k) - 1]
    ok = n_rel > 0
    return float(((hits @ discount)[ok] / ideal[ok]).mean()) if ok.any() else 0.0


def simplex_grid(n: int, step: float) -> np.ndarray:
    """Every weight vector of n non-negative multiples of ``step`` that sum to 1."""
    units = round(1 / step)
    rows = [c for c in itertools.product(range(units + 1), repeat=n) if sum(c) == units]
    return np.array(rows, dtype=np.float64) / units


def first_best(results: Sequence[float] | np.ndarray, tolerance: float = 1e-9) -> int:
    """The index of the first result within ``tolerance`` of the best: candidates are listed with the
    configured (or simplest) one first, so it wins ties and near-ties that are only float noise."""
    values = np.asarray(results, dtype=np.float64)
    return int(np.argmax(values > values.max() - tolerance))


def lightest_near_best(
    results: Sequence[float] | np.ndarray, weights: Sequence[float] | np.ndarray, share: float
) -> int:
    """The candidate with the least total ``weights`` among those within ``share`` (relative) of the best
    result; the first of them on ties. A blend part earns its weight only by beating the lighter blends by more
    than validation noise: a 0.04% edge on held-out train users is not a reason to add a part."""
    values = np.asarray(results, dtype=np.float64)
    near = values >= values.max() - share * abs(values.max())
    totals = np.where(near, np.asarray(weights, dtype=np.float64), np.inf)
    return int(np.argmin(totals))


def list_overlap(scores: np.ndarray, k: int, *, pairs: int = 2000, seed: int = 0) -> float:
    """Mean Jaccard overlap of the top-``k`` lists of random pairs of different rows of ``scores`` (1: every
    row gets the same list; 0: no two share an item). Up to ``pairs`` pairs, drawn with ``seed``."""
    if len(scores) < 2:
        return 0.0
    top = np.sort(np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k], axis=1)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(top), pairs)
    b = rng.integers(0, len(top) - 1, pairs)
    b = b + (b >= a)  # a different row
    shared = np.array([len(np.intersect1d(top[i], top[j], assume_unique=True)) for i, j in zip(a, b, strict=True)])
    return float(np.mean(shared / (2 * top.shape[1] - shared)))


def best_distinct(
    results: Sequence[float] | np.ndarray, overlaps: Sequence[float] | np.ndarray, max_overlap: float
) -> int:
    """The :func:`first_best` of the candidates whose lists overlap by at most ``max_overlap`` (see
    :func:`list_overlap`); when none is that distinct, the least overlapping one. Used where a user's own
    words must decide the list: offline NDCG alone rewards popularity, which gives every user the same list."""
    values = np.asarray(results, dtype=np.float64)
    shares = np.asarray(overlaps, dtype=np.float64)
    allowed = shares <= max_overlap
    if not allowed.any():
        return int(np.argmin(shares))
    return first_best(np.where(allowed, values, -np.inf))
