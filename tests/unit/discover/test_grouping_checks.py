"""Group finders check their own results: noise, one group of nearly everyone, too few groups; HDBSCAN
falls back instead of handing on no group; choose_k sets lopsided candidates aside."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from personas.discover import (
    AgglomerativeGroups,
    GroupingWarning,
    HDBSCANGroups,
    KMeansGroups,
    choose_k,
    grouping_report,
)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _no_structure(n: int = 120, dim: int = 64) -> np.ndarray:
    """Random directions: no region is denser than the rest, so HDBSCAN finds no group at all."""
    return _unit(np.random.default_rng(0).normal(size=(n, dim)))


def _cap_and_outliers() -> tuple[np.ndarray, np.ndarray]:
    """95 users spread over one cap (up to ~23 degrees from its centre) and 5 users in a tight far group."""
    rng = np.random.default_rng(4)
    cap = np.zeros((95, 8))
    cap[:, 0] = 1.0
    cap[:, 1:4] = rng.uniform(-0.3, 0.3, size=(95, 3))
    far = np.zeros((5, 8))
    far[:, 7] = 1.0
    far[:, 6] = rng.normal(scale=0.01, size=5)
    return _unit(np.vstack([cap, far])), np.r_[np.zeros(95, int), np.ones(5, int)]


def test_report_counts_by_hand() -> None:
    labels = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, -1, -1])
    report = grouping_report(labels, owner="X")
    assert (report.n_users, report.n_groups, report.sizes) == (12, 2, [9, 1])
    assert report.noise_share == pytest.approx(2 / 12)
    assert report.largest_share == pytest.approx(9 / 12)
    assert report.warnings == []  # 75% in one group, 17% noise: under both thresholds
    worse = grouping_report(np.r_[np.zeros(9, int), 1], owner="X", hints={"largest": "do this"})
    assert worse.warnings == ["X: one group holds 90.0% of users (9 of 10), more than 80%; do this."]


def test_hdbscan_without_any_group_falls_back_to_kmeans_and_says_so() -> None:
    x = _no_structure()
    with pytest.warns(GroupingWarning, match=r"HDBSCAN found no group .* spherical k-means with k = \d"):
        finder = HDBSCANGroups(min_group_size=10).fit(x)
    assert finder.n_groups_ >= 2 and (finder.labels_ >= 0).all()
    assert finder.report_.fallback is not None and finder.report_.unassigned_share == 1.0
    assert finder.centroids_.shape == (finder.n_groups_, x.shape[1])
    np.testing.assert_array_equal(finder.assign(x), finder.labels_)
    with pytest.warns(GroupingWarning, match=r"all users form one group instead \(fallback = \"one-group\"\)"):
        one = HDBSCANGroups(min_group_size=10, fallback="one-group").fit(x)
    assert one.n_groups_ == 1 and (one.labels_ == 0).all()
    assert len(one.report_.warnings) == 1  # "one group instead" is not repeated as "one group holds 100%"


def test_hdbscan_mostly_noise_warns_and_names_the_setting() -> None:
    rng = np.random.default_rng(1)
    blobs = np.zeros((30, 64))
    blobs[:15, 0] = blobs[15:, 1] = 1.0
    blobs += rng.normal(scale=0.01, size=blobs.shape)
    x = np.vstack([_unit(blobs), _no_structure(60)])  # two dense groups of 15, 60 users in no region
    with pytest.warns(GroupingWarning, match=r"\d+% of users \(\d+ of 90\) are in no group .* noise = \"nearest\""):
        kept = HDBSCANGroups(min_group_size=10).fit(x)
    assert kept.report_.noise_share > 0.5
    nearest = HDBSCANGroups(min_group_size=10, noise="nearest").fit(x)
    assert nearest.report_.noise_share == 0.0
    assert nearest.report_.unassigned_share == pytest.approx(kept.report_.noise_share)


def test_average_linkage_lopsided_groups_warn_and_ward_is_the_default() -> None:
    x, _truth = _cap_and_outliers()
    with pytest.warns(GroupingWarning, match=r"one group holds 9\d\.\d% of users .* linkage = \"average\" chains"):
        AgglomerativeGroups(k=2, linkage="average").fit(x)
    assert AgglomerativeGroups(k=2).config.linkage == "ward"


def test_choose_k_sets_lopsided_candidates_aside() -> None:
    x, truth = _cap_and_outliers()
    # Alone, silhouette and stability pick k = 2: the wide cap as one group of 95%, the far five as another.
    old = choose_k(x, [2, 4], finder=KMeansGroups(), max_largest_share=1.0)
    with pytest.warns(GroupingWarning, match="one group holds 95.0%"):
        assert old.k == 2 and adjusted_rand_score(truth, KMeansGroups(k=2).fit(x).labels_) == 1.0
    chosen = choose_k(x, [2, 4], finder=KMeansGroups())
    assert chosen.k == 4
    assert "k = [2] set aside (one group over 80% of users)" in chosen.rule
    assert next(s.largest_share for s in chosen.scores) == pytest.approx(0.95)


def test_candidate_fits_do_not_repeat_warnings() -> None:
    x, _ = _cap_and_outliers()
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupingWarning)
        choose_k(x, [2, 3], finder=AgglomerativeGroups(k=2, linkage="average"))
