"""kNN index and graph against brute force; quality, stability and choose_k on known groups."""

from __future__ import annotations

import numpy as np
import pytest

from personas.discover import (
    AgglomerativeGroups,
    HDBSCANGroups,
    KMeansGroups,
    KNNIndex,
    choose_k,
    group_quality,
    knn_graph,
    stability,
)
from personas.errors import ConfigError, NotFittedError


def _brute(x: np.ndarray, k: int) -> np.ndarray:
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = u @ u.T
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


@pytest.fixture(scope="module")
def cloud() -> np.ndarray:
    return np.random.default_rng(5).normal(size=(600, 24)).astype(np.float32)


def test_exact_index_matches_brute_force(cloud):
    index = KNNIndex(engine="exact").build(cloud)
    ids, sims = index.search(cloud[:50], 6)
    assert (ids[:, 0] == np.arange(50)).all()  # each point is its own nearest neighbour
    np.testing.assert_array_equal(ids[:, 1:], _brute(cloud, 5)[:50])
    assert (np.diff(sims, axis=1) <= 1e-6).all()


@pytest.mark.parametrize("engine", ["ivf", "hnsw"])
def test_approximate_indexes_have_high_recall(engine, cloud):
    graph = knn_graph(cloud, 10, symmetric=False, config=_cfg(engine))
    truth = _brute(cloud, 10)
    found = [set(graph[i].indices) for i in range(len(cloud))]
    recall = np.mean([len(found[i] & set(truth[i])) / 10 for i in range(len(cloud))])
    assert recall >= 0.95


def _cfg(engine: str):
    from personas.discover import NeighboursConfig

    return NeighboursConfig(engine=engine, n_cells=16, nprobe=12)


def test_knn_graph_is_sparse_symmetric_without_self_loops(cloud):
    graph = knn_graph(cloud, 7)
    assert graph.shape == (600, 600)
    assert graph.diagonal().sum() == 0
    assert (graph != graph.T).nnz == 0
    assert 7 * 600 <= graph.nnz <= 2 * 7 * 600  # O(n k) edges, never n^2
    directed = knn_graph(cloud, 7, symmetric=False)
    assert (np.diff(directed.indptr) <= 7).all()
    # the threshold only removes edges
    cut = float(np.median(graph.data))
    thresholded = knn_graph(cloud, 7, min_similarity=cut)
    assert 0 < thresholded.nnz < graph.nnz
    assert thresholded.data.min() >= cut


def test_cells_join_is_exact_when_it_probes_every_cell_and_close_when_it_probes_few(cloud):
    from personas.discover import NeighboursConfig

    every = knn_graph(cloud, 10, symmetric=False, config=NeighboursConfig(engine="cells", n_cells=8, join_probe=8))
    truth = _brute(cloud, 10)
    for i in range(len(cloud)):  # same neighbour sets (ties aside: random floats have none)
        assert set(every[i].indices) == set(truth[i])
    assert every.diagonal().sum() == 0
    # clustered data (as real embeddings are): a few probed cells find nearly all neighbours
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(30, 24))
    x = (centres[rng.integers(30, size=3000)] + 0.6 * rng.normal(size=(3000, 24))).astype(np.float32)
    few = knn_graph(x, 10, symmetric=False, config=NeighboursConfig(engine="cells", join_probe=8))
    exact = knn_graph(x, 10, symmetric=False, config=NeighboursConfig(engine="exact"))
    recall = np.mean([len(set(few[i].indices) & set(exact[i].indices)) / 10 for i in range(len(x))])
    assert recall >= 0.95
    assert (np.diff(few.indptr) == 10).all()
    # auto picks the cells join above exact_max_rows
    auto = knn_graph(x, 10, symmetric=False, config=NeighboursConfig(exact_max_rows=1000, join_probe=8))
    assert (auto != few).nnz == 0


def test_unit_rows_are_not_copied_and_others_are_normalised():
    from personas.discover._base import as_unit_vectors

    unit = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    assert as_unit_vectors(unit, owner="t") is unit  # 1M x 384 is 1.5 GB: no copy
    scaled = as_unit_vectors(3 * unit.astype(np.float64), owner="t")
    assert scaled.dtype == np.float32 and scaled.flags.c_contiguous
    np.testing.assert_allclose(scaled, unit, rtol=1e-6)
    zero = as_unit_vectors(np.zeros((2, 3)), owner="t")
    assert (zero == 0).all()


def test_numpy_search_matches_faiss_and_pads_missing_neighbours(cloud):
    index = KNNIndex(engine="exact").build(cloud[:4])
    index.index_ = None  # force the numpy path, which is used when faiss is not installed
    ids, sims = index.search(cloud[:2], 6)
    assert ids[:, 4:].tolist() == [[-1, -1], [-1, -1]]
    assert np.isneginf(sims[:, 4:]).all()
    faiss_ids, _ = KNNIndex(engine="exact").build(cloud[:4]).search(cloud[:2], 4)
    np.testing.assert_array_equal(ids[:, :4], faiss_ids)


def test_index_errors():
    with pytest.raises(NotFittedError, match=r"build\(X\)"):
        KNNIndex().search(np.eye(3), 2)
    with pytest.raises(ConfigError, match="'k' parameter of knn_graph"):
        knn_graph(np.eye(3), 0)


def test_group_quality_against_truth(four_blobs):
    x, truth = four_blobs
    perfect = group_quality(x, truth, truth)
    assert perfect.nmi == pytest.approx(1.0)
    assert perfect.ari == pytest.approx(1.0)
    assert perfect.silhouette > 0.9
    assert perfect.sizes == [40, 40, 40, 40]
    shuffled = group_quality(x, np.random.default_rng(0).permutation(truth), truth)
    assert shuffled.ari < 0.05
    assert shuffled.silhouette < 0.05
    noisy = truth.copy()
    noisy[:16] = -1
    assert group_quality(x, noisy).noise_share == pytest.approx(0.1)


def test_stability_is_one_on_clear_groups_and_lower_on_noise(four_blobs):
    x, _ = four_blobs
    clear = stability(KMeansGroups(k=4), x, n_runs=3)
    assert clear.mode == "seeds"
    assert clear.mean_ari == pytest.approx(1.0)
    assert len(clear.pairwise_ari) == 3
    noise = np.random.default_rng(1).normal(size=(160, 16))
    assert stability(KMeansGroups(k=4, n_init=1), noise, n_runs=3).mean_ari < 0.9


def test_stability_of_a_seedless_method_uses_subsamples(four_blobs):
    x, _ = four_blobs
    result = stability(AgglomerativeGroups(k=4), x, n_runs=3)
    assert result.mode == "subsample"
    assert result.mean_ari == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="no seed"):
        stability(HDBSCANGroups(), x, mode="seeds")


def test_choose_k_finds_four_blobs_and_reports_every_candidate(four_blobs):
    x, _ = four_blobs
    choice = choose_k(x, range(2, 8), n_runs=2)
    assert choice.k == 4
    assert [s.k for s in choice.scores] == [2, 3, 4, 5, 6, 7]
    best = max(choice.scores, key=lambda s: s.silhouette)
    assert best.k == 4
    assert all(s.stability is not None and s.inertia is not None for s in choice.scores)
    by_agglomerative = choose_k(x, [3, 4, 5], finder=AgglomerativeGroups(k=2), n_runs=2)
    assert by_agglomerative.k == 4


def test_choose_k_rejects_impossible_candidates(four_blobs):
    x, _ = four_blobs
    with pytest.raises(ConfigError, match="candidates"):
        choose_k(x[:5], [2, 9])
    with pytest.raises(ConfigError, match="'k' parameter"):
        choose_k(x, [2, 3], finder=HDBSCANGroups())


def test_cells_join_handles_one_cell_holding_everyone():
    from personas.discover import NeighboursConfig

    x = np.vstack([np.tile([1.0, 0.0, 0.0], (300, 1)), np.eye(3)[1:]])  # 300 identical users and two others
    graph = knn_graph(x, 5, symmetric=False, config=NeighboursConfig(engine="cells", block=7))
    assert (np.diff(graph.indptr)[:300] == 5).all()
    assert graph.diagonal().sum() == 0
    assert set(graph[0].indices) <= set(range(300))  # identical users are each other's neighbours
