"""Nested personas (fine groups inside coarse ones), per-group stability, and labels that do not depend on the
BLAS thread count: tiny data whose answers are known."""

# ruff: noqa: N806  (X is a matrix, as in scikit-learn)

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from personas.discover import (
    KMeansGroups,
    choose_coarse_k,
    coarse_refits,
    group_stability,
    nest,
    refits,
)
from personas.discover._base import exact_argmax, nearest_centroid
from personas.errors import ConfigError


def two_by_two(n: int = 25, noise: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two coarse tastes (axes 0 and 6), each with two clear sub-tastes (a second axis at 0.3)."""
    rng = np.random.default_rng(seed)
    d = 12
    rows, truth = [], []
    for coarse in range(2):
        for fine in range(2):
            centre = np.zeros(d)
            centre[6 * coarse] = 1.0
            centre[6 * coarse + 1 + fine] = 0.3
            rows.append(centre / np.linalg.norm(centre) + noise * rng.standard_normal((n, d)))
            truth += [2 * coarse + fine] * n
    return np.vstack(rows).astype(np.float32), np.asarray(truth)


def test_two_coarse_groups_of_two_fine_ones_make_a_two_by_two_tree() -> None:
    X, truth = two_by_two()
    fine = KMeansGroups(k=4, seed=0).fit(X).labels_
    tree = nest(X, fine, 2)
    assert tree.n_fine == 4 and tree.n_coarse == 2
    assert sorted(len(tree.children(c)) for c in range(2)) == [2, 2]
    # each fine group is one true sub-taste, and siblings share the true coarse taste
    for f in range(4):
        assert len(set(truth[fine == f])) == 1
    for c in range(2):
        assert len({int(truth[fine == f][0]) // 2 for f in tree.children(c)}) == 1
    # nested: a user's coarse group is their fine group's parent
    assert np.array_equal(tree.coarse_labels, tree.parent[fine])
    # placing a member's own vector gives back both of its levels
    coarse, placed = tree.place(X[[0, 60]])
    assert placed.tolist() == fine[[0, 60]].tolist()
    assert coarse.tolist() == tree.coarse_labels[[0, 60]].tolist()


def test_coarse_k_is_chosen_by_silhouette_and_stability_among_the_cuts() -> None:
    X, _ = two_by_two()
    finder = KMeansGroups(k=4, seed=0)
    fine = finder.fit(X).labels_
    others = refits(finder, X, n_runs=3)
    choice = choose_coarse_k(X, fine, [2, 3, 4, 5, 12], refit_labels=others)
    assert choice.k == 2  # fewest groups within 5% of the best silhouette
    assert [s.k for s in choice.scores] == [2, 3, 4]  # more coarse than fine groups is no candidate
    assert all(s.stability == pytest.approx(1.0) for s in choice.scores)
    assert [len(np.unique(c)) for c in coarse_refits(X, others, 2)] == [2, 2, 2]
    assert choose_coarse_k(X, fine, [6, 8]).k == 4  # none fits: every fine group is its own coarse one


def test_coarse_groups_are_numbered_by_size_then_first_member() -> None:
    X, _ = two_by_two()
    big = np.vstack([X, X[50:100]])  # the second coarse taste gets twice the users
    fine = KMeansGroups(k=4, seed=0).fit(big).labels_
    tree = nest(big, fine, 2)
    sizes = np.bincount(tree.coarse_labels)
    assert sizes[0] > sizes[1]
    assert tree.coarse_labels[50] == 0


def test_an_arbitrary_split_is_unstable_and_a_clear_group_is_not() -> None:
    rng = np.random.default_rng(0)
    d = 20
    clear = np.zeros((60, d))
    clear[:, 0] = 1.0
    clear += 0.02 * rng.standard_normal((60, d))
    blob = np.zeros((200, d))
    blob[:, 1] = 1.0
    blob[:, 2:] += 0.3 * rng.standard_normal((200, d - 2))  # round: any cut through it is as good as another
    X = np.vstack([clear, blob]).astype(np.float32)
    finder = KMeansGroups(k=3, seed=0)
    labels = finder.fit(X).labels_
    scores = group_stability(labels, refits(finder, X, n_runs=3))
    clear_group = int(labels[0])
    assert scores[clear_group] == pytest.approx(1.0)
    halves = [g for g in range(3) if g != clear_group]
    assert all(scores[g] < 0.6 for g in halves), scores


def test_best_match_jaccard_by_hand() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1])
    other = np.array([5, 5, 5, 1, 1, 1])  # group 0 matches {0,1,2}: 3/4; group 1 matches {3,4,5}: 2/3
    assert group_stability(labels, [other]).tolist() == pytest.approx([0.75, 2 / 3])
    with pytest.raises(ConfigError, match="at least one other labeling"):
        group_stability(labels, [])


def test_nest_refuses_more_coarse_than_fine_groups() -> None:
    X, _ = two_by_two()
    with pytest.raises(ConfigError, match=r"'n_coarse' parameter of nest must be an int in \[1, n_fine=4\]"):
        nest(X, KMeansGroups(k=4, seed=0).fit(X).labels_, 5)


# ---------------------------------------------------------------------------------------------- determinism
def test_exact_ties_go_to_the_lowest_centroid_in_any_order() -> None:
    x = np.array([[0.6, 0.6, 0.0]], dtype=np.float32)
    a = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    b = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    assert nearest_centroid(x, np.vstack([a, b]))[0].tolist() == [0]
    assert nearest_centroid(x, np.vstack([b, a]))[0].tolist() == [0]
    assert exact_argmax(x, np.vstack([b, a]))[0].tolist() == [0]


def test_close_calls_are_decided_in_float64() -> None:
    rng = np.random.default_rng(1)
    d = 384
    c0 = rng.standard_normal(d).astype(np.float32)
    c1 = c0.copy()
    c1[:8] += np.float32(1e-6)  # a centroid a hair away: float32 dot products cannot tell them apart reliably
    X = rng.standard_normal((500, d)).astype(np.float32)
    labels = nearest_centroid(X, np.vstack([c0, c1]))[0]
    # the exactly rounded answer (products of float32 are exact in float64; fsum rounds once)
    exact = [
        int(math.fsum(map(float, x.astype(np.float64) * c1)) > math.fsum(map(float, x.astype(np.float64) * c0)))
        for x in X
    ]
    assert labels.tolist() == exact


def near_ties(seed: int = 0) -> np.ndarray:
    """Users on the bisectors between four directions (exact ties in exact arithmetic) plus noise users."""
    rng = np.random.default_rng(seed)
    d = 64
    axes = np.eye(d)[:4]
    rows = [axes[i] + 0.05 * rng.standard_normal((40, d)) for i in range(4)]
    rows += [np.repeat((axes[i] + axes[(i + 1) % 4])[None, :], 10, axis=0) for i in range(4)]
    rows.append(rng.standard_normal((40, d)) * 0.3 + axes.sum(axis=0))
    return np.vstack(rows).astype(np.float32)


def test_labels_are_the_same_with_one_and_two_blas_threads() -> None:
    X = near_ties()
    results = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            results.append(KMeansGroups(k=16, seed=0, engine="numpy").fit(X).labels_)
    assert np.array_equal(results[0], results[1])


_CHILD = """
import json, sys
import numpy as np
sys.path.insert(0, {tests!r})
from personas.discover import KMeansGroups, nest
from unit.discover.test_tree import near_ties
X = near_ties()
labels = KMeansGroups(k=16, seed=0, engine="numpy").fit(X).labels_
print(json.dumps({{"fine": labels.tolist(), "coarse": nest(X, labels, 5).coarse_labels.tolist()}}))
"""


def test_labels_are_the_same_in_processes_started_with_one_and_two_threads() -> None:
    tests = str(Path(__file__).resolve().parents[2])
    outputs = []
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        done = subprocess.run(
            [sys.executable, "-c", _CHILD.format(tests=tests)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        outputs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert outputs[0] == outputs[1]


def test_merge_on_builds_the_tree_in_another_space_and_places_in_the_first() -> None:
    # In X, sub-tastes 0,1 and 2,3 are siblings; in the names' space (merge_on) 0 sits with 2 and 1 with 3.
    X, truth = two_by_two()
    layout, order = two_by_two(seed=1)  # rows of layout are sub-tastes 0..3, 25 each, in order
    swap = np.array([0, 2, 1, 3])  # sub-taste t of X sits where sub-taste swap[t] sits in the other space
    other = np.vstack([layout[order == swap[t]] for t in range(4)])
    fine = truth.copy()
    plain = nest(X, fine, 2)
    merged = nest(X, fine, 2, merge_on=other)
    assert {frozenset(plain.children(c)) for c in range(2)} == {frozenset({0, 1}), frozenset({2, 3})}
    assert {frozenset(merged.children(c)) for c in range(2)} == {frozenset({0, 2}), frozenset({1, 3})}
    assert np.array_equal(merged.coarse_labels, merged.parent[fine])  # still nested
    # centroids (and placing) stay in X's space: a member's own vector gives back its fine group
    coarse, placed = merged.place(X[[0, 30, 60, 90]])
    assert placed.tolist() == [0, 1, 2, 3]
    assert coarse.tolist() == merged.parent[[0, 1, 2, 3]].tolist()
    # the coarse k is chosen from silhouettes in the merge space, and refits nest there too
    choice = choose_coarse_k(X, fine, [2, 3], merge_on=other)
    assert choice.k == 2
    refit = coarse_refits(X, [fine], 2, merge_on=other)[0]
    assert np.array_equal(refit, merged.coarse_labels)
    with pytest.raises(ConfigError, match="merge_on has 3 rows"):
        nest(X, fine, 2, merge_on=other[:3])
