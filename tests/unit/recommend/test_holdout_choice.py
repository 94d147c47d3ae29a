"""The tuning helpers in personas.holdout that choose among candidates: first_best, list_overlap, best_distinct,
lightest_near_best."""

from __future__ import annotations

import numpy as np
import pytest

from personas.holdout import best_distinct, first_best, lightest_near_best, list_overlap


def test_first_best_prefers_the_first_of_near_ties() -> None:
    assert first_best([0.5, 0.7, 0.7 + 1e-12, 0.6]) == 1
    assert first_best([0.9, 0.1]) == 0


def test_list_overlap_is_one_when_every_row_ranks_the_same_items() -> None:
    scores = np.tile(np.arange(20, dtype=float), (6, 1))
    assert list_overlap(scores, 5) == pytest.approx(1.0)


def test_list_overlap_is_zero_for_disjoint_lists() -> None:
    scores = np.zeros((4, 20))
    for row in range(4):
        scores[row, row * 5 : row * 5 + 5] = 1.0  # each row's top-5 is its own block
    assert list_overlap(scores, 5) == 0.0


def test_list_overlap_measures_partial_sharing() -> None:
    scores = np.zeros((2, 10))
    scores[0, [0, 1, 2, 3]] = 1.0
    scores[1, [2, 3, 4, 5]] = 1.0  # two shared of six distinct items
    assert list_overlap(scores, 4) == pytest.approx(2 / 6)
    assert list_overlap(scores[:1], 4) == 0.0  # one row: no pairs


def test_best_distinct_picks_the_best_allowed_candidate() -> None:
    # the most popular-looking candidate (index 2) wins on NDCG but makes every list alike
    assert best_distinct([0.20, 0.25, 0.40], [0.02, 0.08, 0.60], 0.10) == 1
    assert best_distinct([0.20, 0.25, 0.40], [0.02, 0.08, 0.60], 1.0) == 2


def test_best_distinct_falls_back_to_the_least_overlapping() -> None:
    assert best_distinct([0.3, 0.5, 0.4], [0.5, 0.7, 0.3], 0.10) == 2


def test_lightest_near_best_takes_the_lightest_blend_within_noise_of_the_best() -> None:
    # The ml-100k case: (0.5, 0.5) edges out (0, 0) by 0.04%; a clear gain still wins.
    results = [0.5313, 0.5584, 0.5586, 0.5464]
    weights = [1.0, 0.0, 1.0, 2.0]
    assert lightest_near_best(results, weights, 0.005) == 1
    assert lightest_near_best(results, weights, 0.0) == 2  # no tolerance: the best
    assert lightest_near_best([0.50, 0.60, 0.58], [0.0, 4.0, 1.0], 0.005) == 1  # 0.58 is 3% below: not near
    assert lightest_near_best([0.50, 0.60, 0.599], [0.0, 4.0, 1.0], 0.005) == 2
    assert lightest_near_best([0.6, 0.6], [1.0, 1.0], 0.005) == 0  # ties: the first
