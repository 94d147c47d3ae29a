"""Checks every group finder passes (the shared contract), on data whose right answer is obvious."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from personas.discover import (
    AgglomerativeGroups,
    BaseGroupFinder,
    GroupFinder,
    GroupingWarning,
    HDBSCANGroups,
    KMeansGroups,
    LeidenGroups,
    finder_config_from_json,
    make_finder,
)
from personas.errors import ConfigError, DataError, NotFittedError

FINDERS = {
    "kmeans-numpy": lambda: KMeansGroups(k=4, engine="numpy"),
    "kmeans-faiss": lambda: KMeansGroups(k=4, engine="faiss"),
    "agglomerative-k": lambda: AgglomerativeGroups(k=4),
    "agglomerative-threshold": lambda: AgglomerativeGroups(distance_threshold=0.5, linkage="average"),
    "hdbscan": lambda: HDBSCANGroups(min_group_size=10),
    "leiden": lambda: LeidenGroups(n_neighbors=10, min_similarity=0.5),
}
pytestmark = pytest.mark.parametrize("make", FINDERS.values(), ids=FINDERS.keys())


def test_recovers_well_separated_groups(make, four_blobs):
    x, truth = four_blobs
    finder = make().fit(x)
    assert isinstance(finder, GroupFinder)
    assert finder.n_groups_ == 4
    assert adjusted_rand_score(truth, finder.labels_) == 1.0
    assert finder.centroids_.shape == (4, x.shape[1])
    np.testing.assert_allclose(np.linalg.norm(finder.centroids_, axis=1), 1.0, rtol=1e-5)
    # groups are numbered by size, largest first
    assert list(np.bincount(finder.labels_)) == sorted(np.bincount(finder.labels_), reverse=True)


def test_reports_its_own_result_and_is_quiet_when_it_is_good(make, four_blobs):
    x, _ = four_blobs
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupingWarning)
        finder = make().fit(x)
    report = finder.report_
    assert (report.n_users, report.n_groups, report.noise_share, report.fallback) == (len(x), 4, 0.0, None)
    assert report.sizes == finder.sizes_.tolist()
    assert report.largest_share == pytest.approx(finder.sizes_.max() / len(x))
    assert report.warnings == []


def test_same_seed_same_groups(make, four_blobs):
    x, _ = four_blobs
    np.testing.assert_array_equal(make().fit(x).labels_, make().fit(x).labels_)


def test_assign_agrees_with_labels_on_training_points(make, four_blobs):
    x, _ = four_blobs
    finder = make().fit(x)
    np.testing.assert_array_equal(finder.assign(x), finder.labels_)
    # scale does not matter: vectors are compared by direction
    np.testing.assert_array_equal(finder.assign(3.0 * x[:5]), finder.labels_[:5])


def test_assign_before_fit_is_a_clear_error(make, four_blobs):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        make().assign(four_blobs[0])


def test_bad_input_is_a_data_error(make, four_blobs):
    x, _ = four_blobs
    with pytest.raises(DataError, match="2-D"):
        make().fit(x[0])
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        make().fit(bad)
    finder = make().fit(x)
    with pytest.raises(DataError, match="columns"):
        finder.assign(x[:, :3])


def test_config_round_trips_through_json(make):
    finder: BaseGroupFinder = make()
    text = finder.config.model_dump_json()
    again = make_finder(finder_config_from_json(text))
    assert type(again) is type(finder)
    assert again.config == finder.config
    assert json.loads(text)["method"] == finder.config.method


# ---------------------------------------------------------------------- edge cases every finder handles
def test_same_config_same_groups_on_data_without_structure(make):
    """Determinism where the answer is not obvious: random directions, so any hidden randomness would show."""
    x = np.random.default_rng(11).normal(size=(160, 16))
    np.testing.assert_array_equal(make().fit(x).labels_, make().fit(x).labels_)


def test_a_far_user_is_a_group_of_one_or_noise(make, four_blobs):
    """One user far from everyone: a group of its own, or noise (-1) where the method has a noise rule
    and a group must have more members (HDBSCAN's min_group_size); never merged into a blob."""
    x, truth = four_blobs
    far = np.zeros((1, x.shape[1]), dtype=np.float32)
    far[0, -1] = 1.0  # orthogonal to all four blob directions
    finder = make()
    if getattr(finder.config, "k", None) is not None:
        finder = finder.with_params(k=5)
    finder.fit(np.vstack([x, far]))
    label = finder.labels_[-1]
    if label == -1:
        assert isinstance(finder, HDBSCANGroups)  # the only method whose groups need >= 2 members here
    else:
        assert finder.sizes_[label] == 1
        assert (finder.labels_[:-1] != label).all()
    assert adjusted_rand_score(truth, finder.labels_[:-1]) == 1.0


def test_more_groups_than_users_is_a_clear_error(make):
    finder = make()
    fields = type(finder.config).model_fields
    if "k" in fields and finder.config.k is not None:
        with pytest.raises(ConfigError, match=r"The 'k' parameter of \w+ must be an int in \[1, n_users=3\]"):
            finder.with_params(k=4).fit(np.eye(3))
    elif "min_group_size" in fields and finder.config.min_group_size > 1:
        with pytest.raises(ConfigError, match=r"'min_group_size' parameter of \w+ must be an int in \[2, n_users=3\]"):
            finder.fit(np.eye(3))
    else:  # a threshold or a graph: no count to exceed, and three users still get labels
        assert len(finder.fit(np.eye(3)).labels_) == 3


def test_identical_vectors_make_one_group(make):
    x = np.tile([0.3, -0.4, 0.5, 0.1], (24, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # k-means warns that it found fewer groups than k
        with pytest.warns(GroupingWarning, match=r"found 1 group\(s\), fewer than 2; \w+"):
            finder = make().fit(x)
    assert finder.n_groups_ == 1 and finder.report_.n_groups == 1
    assert (finder.labels_ == 0).all()
    np.testing.assert_array_equal(finder.assign(x[:3]), [0, 0, 0])
