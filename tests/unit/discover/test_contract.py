"""Checks every group finder passes (the shared contract), on data whose right answer is obvious."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from personas.discover import (
    AgglomerativeGroups,
    BaseGroupFinder,
    GroupFinder,
    HDBSCANGroups,
    KMeansGroups,
    LeidenGroups,
    finder_config_from_json,
    make_finder,
)
from personas.errors import DataError, NotFittedError

FINDERS = {
    "kmeans-numpy": lambda: KMeansGroups(k=4, engine="numpy"),
    "kmeans-faiss": lambda: KMeansGroups(k=4, engine="faiss"),
    "agglomerative-k": lambda: AgglomerativeGroups(k=4),
    "agglomerative-threshold": lambda: AgglomerativeGroups(distance_threshold=0.5),
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
