"""Known answers for each method: hand-solved data, thresholds, noise, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from personas.discover import (
    NOISE,
    AgglomerativeGroups,
    HDBSCANGroups,
    KMeansGroups,
    LeidenGroups,
)
from personas.errors import ConfigError


# ---------------------------------------------------------------------- k-means
@pytest.mark.parametrize("engine", ["numpy", "faiss"])
def test_kmeans_four_points_by_hand(engine):
    # Two pairs of directions; each pair is 0.1 rad either side of its mean direction.
    angles = np.array([0.0, 0.2, 1.4, 1.6])
    x = np.column_stack([np.cos(angles), np.sin(angles)])
    km = KMeansGroups(k=2, engine=engine, n_init=2).fit(x)
    assert km.labels_[0] == km.labels_[1] != km.labels_[2] == km.labels_[3]
    # objective: 4 users, each at cosine cos(0.1) from its centroid: sum of 2 - 2 cos(0.1)
    assert km.inertia_ == pytest.approx(4 * (2 - 2 * np.cos(0.1)), rel=1e-4)


def test_kmeans_k_larger_than_users_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"The 'k' parameter of KMeansGroups must be an int in \[1, n_users=3\]"):
        KMeansGroups(k=5).fit(np.eye(3))


def test_bad_parameter_uses_the_error_template():
    with pytest.raises(ConfigError, match=r"The 'k' parameter of KMeansConfig is invalid: .*Got 0 instead"):
        KMeansGroups(k=0)
    with pytest.raises(ConfigError, match="'n_neighbors' parameter of LeidenConfig"):
        LeidenGroups(n_neighbors=0)


def test_kmeans_group_of_one_user():
    x = np.vstack([np.tile([1.0, 0.0, 0.0], (10, 1)), [[0.0, 0.0, 1.0]]])
    km = KMeansGroups(k=2, seed=3).fit(x + 1e-3 * np.random.default_rng(0).normal(size=x.shape))
    assert sorted(km.sizes_.tolist()) == [1, 10]
    assert km.labels_[-1] == 1  # the smaller group is numbered last


@pytest.mark.parametrize("engine", ["numpy", "faiss"])
def test_kmeans_identical_vectors_give_one_group_and_a_warning(engine):
    x = np.tile([0.3, 0.4, 0.5], (12, 1))
    with pytest.warns(RuntimeWarning, match="found 1 distinct group"):
        km = KMeansGroups(k=3, engine=engine).fit(x)
    assert km.n_groups_ == 1
    assert (km.labels_ == 0).all()
    assert km.inertia_ == pytest.approx(0.0, abs=1e-5)


def test_kmeans_engines_reach_the_same_optimum(four_blobs):
    x, _ = four_blobs
    a = KMeansGroups(k=4, engine="numpy").fit(x)
    b = KMeansGroups(k=4, engine="faiss").fit(x)
    assert adjusted_rand_score(a.labels_, b.labels_) == 1.0
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-4)


def test_kmeans_seed_changes_nothing_on_easy_data_but_is_stored(four_blobs):
    x, _ = four_blobs
    a = KMeansGroups(k=4, seed=1).fit(x)
    assert a.with_params(seed=7).config.seed == 7
    assert a.config.seed == 1


# ---------------------------------------------------------------------- agglomerative
def test_threshold_merges_the_near_pair_and_not_the_far_group(near_pair_and_far):
    x, truth = near_pair_and_far
    # A-B average cosine distance ~ 1 - cos(0.52) = 0.13; C is at distance ~1 from both (average linkage:
    # the threshold is a cosine distance).
    merged = AgglomerativeGroups(distance_threshold=0.3, linkage="average").fit(x)
    assert merged.n_groups_ == 2
    assert len(set(merged.labels_[truth == 0]) | set(merged.labels_[truth == 1])) == 1
    assert set(merged.labels_[truth == 2]).isdisjoint(merged.labels_[truth == 0])
    apart = AgglomerativeGroups(distance_threshold=0.05, linkage="average").fit(x)
    assert apart.n_groups_ == 3
    assert adjusted_rand_score(truth, apart.labels_) == 1.0


def test_tree_is_kept_for_other_cuts_split_and_merge(near_pair_and_far):
    x, truth = near_pair_and_far
    tree = AgglomerativeGroups(k=2, linkage="average").fit(x)
    assert adjusted_rand_score(truth, tree.cut(k=3)) == 1.0
    assert tree.n_groups_ == 2  # cutting does not change the fitted groups
    big = int(tree.labels_[truth == 0][0])  # the A+B group (40 users)
    tree.split(big)
    assert tree.n_groups_ == 3
    assert adjusted_rand_score(truth, tree.labels_) == 1.0
    a, b = int(tree.labels_[truth == 0][0]), int(tree.labels_[truth == 1][0])
    tree.merge(a, b)
    assert tree.n_groups_ == 2
    assert sorted(tree.sizes_.tolist()) == [20, 40]
    assert tree.report_.sizes == [40, 20]  # the report follows edits by hand
    # a group merged by hand splits back into its parts
    tree.split(int(tree.labels_[truth == 0][0]))
    assert adjusted_rand_score(truth, tree.labels_) == 1.0
    with pytest.raises(ConfigError, match="No group 9"):
        tree.merge(0, 9)


def test_agglomerative_needs_exactly_one_of_k_or_threshold():
    with pytest.raises(ConfigError, match="exactly one of 'k' or 'distance_threshold'"):
        AgglomerativeGroups().fit(np.eye(3))
    with pytest.raises(ConfigError, match="exactly one"):
        AgglomerativeGroups(k=2, distance_threshold=0.2).fit(np.eye(3))


def test_agglomerative_refuses_quadratic_memory_above_max_rows():
    with pytest.raises(ConfigError, match="max_rows=10"):
        AgglomerativeGroups(k=2, max_rows=10).fit(np.random.default_rng(0).normal(size=(11, 3)))


def test_agglomerative_single_user_and_identical_vectors():
    one = AgglomerativeGroups(k=1).fit(np.array([[1.0, 2.0]]))
    assert one.labels_.tolist() == [0]
    same = AgglomerativeGroups(distance_threshold=0.1).fit(np.tile([1.0, 2.0], (5, 1)))
    assert same.n_groups_ == 1


# ---------------------------------------------------------------------- HDBSCAN
def _blobs_with_outliers() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    x = np.vstack(
        [
            np.tile(np.eye(8)[0], (30, 1)) + 0.03 * rng.normal(size=(30, 8)),
            np.tile(np.eye(8)[1], (30, 1)) + 0.03 * rng.normal(size=(30, 8)),
            np.eye(8)[2:6] + np.eye(8)[6] * 0.5,  # four scattered users, far from both groups and each other
        ]
    )
    return x, np.r_[np.zeros(30), np.ones(30), -np.ones(4)].astype(int)


def test_hdbscan_marks_scattered_users_as_noise():
    x, truth = _blobs_with_outliers()
    model = HDBSCANGroups(min_group_size=5).fit(x)
    assert model.n_groups_ == 2
    assert (model.labels_[truth < 0] == NOISE).all()
    assert (model.labels_[truth >= 0] >= 0).all()
    assert model.noise_share_ == pytest.approx(4 / 64)
    # a new user far from both groups is noise too; one inside a group joins it
    assert model.assign(np.eye(8)[[3, 0]]).tolist() == [NOISE, model.labels_[0]]


def test_hdbscan_can_give_noise_to_the_nearest_group():
    x, truth = _blobs_with_outliers()
    model = HDBSCANGroups(min_group_size=5, noise="nearest").fit(x)
    assert (model.labels_ >= 0).all()
    assert model.noise_share_ == pytest.approx(4 / 64)  # still reported
    assert adjusted_rand_score(truth[truth >= 0], model.labels_[truth >= 0]) == 1.0


def test_hdbscan_min_group_size_above_users_is_a_clear_error():
    with pytest.raises(ConfigError, match="'min_group_size' parameter of HDBSCANGroups"):
        HDBSCANGroups(min_group_size=10).fit(np.eye(4))


def test_hdbscan_identical_vectors_are_one_group():
    model = HDBSCANGroups(min_group_size=3).fit(np.tile([1.0, 1.0], (6, 1)))
    assert model.n_groups_ == 1


# ---------------------------------------------------------------------- Leiden on a kNN graph
def test_leiden_similarity_threshold_cuts_weak_edges(near_pair_and_far):
    x, truth = near_pair_and_far
    # A-B similarity ~0.87: a 0.95 threshold keeps them apart; 0.8 lets their edges in.
    strict = LeidenGroups(n_neighbors=25, min_similarity=0.95).fit(x)
    assert adjusted_rand_score(truth, strict.labels_) == 1.0
    graph = LeidenGroups(n_neighbors=25, min_similarity=0.8).fit(x).graph_
    ab = graph[np.ix_(truth == 0, truth == 1)]
    ac = graph[np.ix_(truth == 0, truth == 2)]
    assert ab.nnz > 0
    assert ac.nnz == 0


def test_leiden_isolated_user_is_noise_below_min_group_size():
    rng = np.random.default_rng(0)
    x = np.vstack([np.tile(np.eye(5)[0], (15, 1)) + 0.02 * rng.normal(size=(15, 5)), np.eye(5)[4]])
    model = LeidenGroups(n_neighbors=5, min_similarity=0.5, min_group_size=2).fit(x)
    assert model.labels_[-1] == NOISE
    assert (model.labels_[:-1] >= 0).all()
    assert model.assign(np.eye(5)[[4]]).tolist() == [NOISE]
