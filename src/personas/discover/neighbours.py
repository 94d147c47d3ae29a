"""Nearest neighbours by cosine similarity without an n x n matrix: an index and a kNN graph builder.

Engines:
- ``exact``: faiss ``IndexFlatIP`` (or blocked numpy matmul when faiss is absent); memory O(n d + block n).
- ``ivf``: faiss inverted file over spherical k-means cells (about sqrt(n) cells), probing ``nprobe`` cells;
  near-exact recall at a fraction of the exact cost on large n.
- ``hnsw``: faiss HNSW graph (``M`` links per node, ``ef_search`` candidates per query).
- ``cells`` (the kNN graph only): a blocked self-join over spherical k-means cells. Every row goes to its
  nearest of about ``sqrt(n)`` cells; each cell then compares its members with the members of the
  ``join_probe`` cells its members lie closest to, as one matrix product per cell (BLAS speed, where IVF
  search is one vector at a time). Near-exact recall at a small fraction of the exact cost; memory
  O(n d + cell block). An index built with this engine searches like ``auto``.
- ``auto``: exact up to ``exact_max_rows`` rows; above that, ivf for an index and cells for a graph.

Used by the graph-community group finder and, later, by neighbour-based recommenders.
"""

# ruff: noqa: N803  (X is a matrix, as in scikit-learn)

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from personas.config import ComponentConfig
from personas.discover._base import as_unit_vectors
from personas.errors import ConfigError, DataError, NotFittedError

__all__ = ["KNNIndex", "NeighboursConfig", "knn_graph"]


class NeighboursConfig(ComponentConfig):
    engine: Literal["auto", "exact", "ivf", "hnsw", "cells"] = "auto"
    exact_max_rows: int = Field(50_000, ge=1)
    n_cells: int | None = Field(None, ge=1, description="IVF cells; None = 4 * sqrt(n) (cells engine: sqrt(n)).")
    nprobe: int = Field(16, ge=1, description="IVF cells visited per query.")
    join_probe: int = Field(20, ge=1, description="cells engine: cells each cell's members are compared with.")
    hnsw_m: int = Field(32, ge=4)
    ef_construction: int = Field(80, ge=8)
    ef_search: int = Field(128, ge=8)
    block: int = Field(4096, ge=1, description="Rows per query block (numpy and cells engines).")
    seed: int = 0


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        return None
    return faiss


class KNNIndex:
    """Cosine nearest-neighbour index over unit vectors: ``build(X)`` then ``search(Q, k)``."""

    def __init__(self, config: NeighboursConfig | None = None, **params: Any) -> None:
        self.config = config if config is not None else NeighboursConfig(**params)

    def build(self, X: np.ndarray) -> KNNIndex:
        data = as_unit_vectors(X, owner="KNNIndex.build")
        n, d = data.shape
        engine = self.config.engine
        if engine in ("auto", "cells"):
            engine = "exact" if n <= self.config.exact_max_rows else "ivf"
        faiss = _faiss()
        if faiss is None and engine != "exact":
            raise ConfigError(f"KNNIndex(engine={engine!r}) needs faiss: pip install 'personas[cluster]'.")
        index: Any = None
        if faiss is not None:
            if engine == "exact":
                index = faiss.IndexFlatIP(d)
            elif engine == "hnsw":
                index = faiss.IndexHNSWFlat(d, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = self.config.ef_construction
                index.hnsw.efSearch = self.config.ef_search
            else:
                cells = self.config.n_cells or max(1, min(n // 8, int(4 * np.sqrt(n))))
                quantizer = faiss.IndexFlatIP(d)
                index = faiss.IndexIVFFlat(quantizer, d, cells, faiss.METRIC_INNER_PRODUCT)
                index.cp.seed = self.config.seed
                index.cp.spherical = True
                index.cp.min_points_per_centroid = 1
                index.train(data)
                index.nprobe = min(self.config.nprobe, cells)
            index.add(data)
        self.engine_ = engine
        self.index_ = index
        self.data_ = data
        return self

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar indexed rows for each query: ``(ids (q, k) int64, similarities (q, k))``.

        Where fewer than ``k`` rows exist, missing slots have id ``-1`` and similarity ``-inf``.
        """
        if not hasattr(self, "data_"):
            raise NotFittedError("This KNNIndex is empty. Call build(X) with the vectors to search first.")
        queries = as_unit_vectors(Q, owner="KNNIndex.search")
        if queries.shape[1] != self.data_.shape[1]:
            raise DataError(
                f"KNNIndex.search: queries have {queries.shape[1]} columns, the index has {self.data_.shape[1]}."
            )
        if k < 1:
            raise ConfigError(f"The 'k' parameter of KNNIndex.search must be an int >= 1. Got {k} instead.")
        if self.index_ is not None:
            sims, ids = self.index_.search(queries, k)
            ids = ids.astype(np.int64)
            sims = np.where(ids < 0, -np.inf, sims).astype(np.float32)
            return ids, sims
        return self._search_numpy(queries, k)

    def _search_numpy(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        n = self.data_.shape[0]
        kk = min(k, n)
        q = queries.shape[0]
        ids = np.full((q, k), -1, dtype=np.int64)
        sims = np.full((q, k), -np.inf, dtype=np.float32)
        for start in range(0, q, self.config.block):
            s = queries[start : start + self.config.block] @ self.data_.T
            part = np.argpartition(-s, kk - 1, axis=1)[:, :kk] if kk < n else np.tile(np.arange(n), (len(s), 1))
            ps = np.take_along_axis(s, part, axis=1)
            order = np.lexsort((part, -ps), axis=1)
            ids[start : start + len(s), :kk] = np.take_along_axis(part, order, axis=1)
            sims[start : start + len(s), :kk] = np.take_along_axis(ps, order, axis=1)
        return ids, sims


def knn_graph(
    X: np.ndarray,
    k: int = 15,
    *,
    min_similarity: float | None = None,
    symmetric: bool = True,
    config: NeighboursConfig | None = None,
) -> sp.csr_matrix:
    """A sparse (n, n) graph linking each row to its ``k`` most cosine-similar other rows.

    Edge weights are cosine similarities; edges below ``min_similarity`` and edges with similarity <= 0
    (which graph methods cannot weigh) are dropped. With ``symmetric``,
    an edge in either direction is kept in both (weight = the larger). Memory is O(n k), never O(n^2).
    """
    if k < 1:
        raise ConfigError(f"The 'k' parameter of knn_graph must be an int >= 1. Got {k} instead.")
    config = config or NeighboursConfig()
    data = as_unit_vectors(X, owner="knn_graph")
    n = data.shape[0]
    engine = config.engine
    if engine == "auto":
        engine = "exact" if n <= config.exact_max_rows else "cells"
    if engine == "cells":
        ids, sims = _cell_join(data, min(k + 1, n), config)
    else:
        index = KNNIndex(config).build(data)
        ids, sims = index.search(data, min(k + 1, n))
    rows = np.repeat(np.arange(n), ids.shape[1])
    cols = ids.ravel()
    vals = sims.ravel()
    keep = (cols >= 0) & (cols != rows)
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    # Each row keeps at most k neighbours (self was dropped, or the k+1-th when self was missing).
    order = np.lexsort((-vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    keep = (rank < k) & (vals > 0)
    if min_similarity is not None:
        keep &= vals >= min_similarity
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    graph = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(n, n))
    if symmetric:
        graph = graph.maximum(graph.T).tocsr()
    graph.eliminate_zeros()
    return graph


def _cells(data: np.ndarray, n_cells: int, seed: int) -> np.ndarray:
    """Centroids of ``n_cells`` spherical k-means cells, trained on at most 64 rows per cell."""
    rng = np.random.default_rng(seed)
    n = data.shape[0]
    sample = data if n <= 64 * n_cells else data[np.sort(rng.choice(n, 64 * n_cells, replace=False))]
    faiss = _faiss()
    if faiss is not None:
        km = faiss.Kmeans(data.shape[1], n_cells, niter=10, seed=seed, spherical=True, verbose=False)
        km.cp.min_points_per_centroid = 1
        km.train(sample)
        return np.asarray(km.centroids, dtype=np.float32)
    from personas.discover.kmeans import KMeansConfig, spherical_kmeans

    return spherical_kmeans(sample, KMeansConfig(k=n_cells, n_init=1, max_iter=10, engine="numpy", seed=seed))


def _cell_join(data: np.ndarray, k: int, config: NeighboursConfig) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar rows of every row (itself included), by the cells engine (module docstring).

    A cell's candidate cells are those that appear most often among its members' 8 closest cells (its
    own first): the members near a border pull in the cells across that border.
    """
    n = data.shape[0]
    n_cells = max(1, min(config.n_cells or int(np.ceil(np.sqrt(n))), n))
    centroids = _cells(data, n_cells, config.seed)
    n_cells = centroids.shape[0]
    near = min(8, n_cells)
    cell = np.empty(n, dtype=np.int64)
    close = np.empty((n, near), dtype=np.int64)
    for start in range(0, n, 65_536):
        s = data[start : start + 65_536] @ centroids.T
        top = (
            np.argpartition(-s, near - 1, axis=1)[:, :near]
            if near < n_cells
            else np.tile(np.arange(n_cells), (len(s), 1))
        )
        order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable")
        close[start : start + len(s)] = np.take_along_axis(top, order, axis=1)
        cell[start : start + len(s)] = close[start : start + len(s), 0]
    by_cell = np.argsort(cell, kind="stable")
    bounds = np.searchsorted(cell[by_cell], np.arange(n_cells + 1))
    ids = np.full((n, k), -1, dtype=np.int64)
    sims = np.full((n, k), -np.inf, dtype=np.float32)
    for c in range(n_cells):
        members = by_cell[bounds[c] : bounds[c + 1]]
        if len(members) == 0:
            continue
        votes = np.bincount(close[members].ravel(), minlength=n_cells).astype(np.float64)
        votes[c] = np.inf  # its own cell always
        probe = np.argsort(-votes, kind="stable")[: min(config.join_probe, int((votes > 0).sum()))]
        candidates = np.concatenate([by_cell[bounds[p] : bounds[p + 1]] for p in probe])
        pool = data[candidates]
        kk = min(k, len(candidates))
        # Members in blocks of at most ~64M similarities (256 MB): a lopsided cell (many identical users)
        # must not need a members x candidates matrix.
        step = max(1, min(config.block, 2**26 // len(candidates)))
        for start in range(0, len(members), step):
            rows = members[start : start + step]
            s = data[rows] @ pool.T
            part = (
                np.argpartition(-s, kk - 1, axis=1)[:, :kk]
                if kk < len(candidates)
                else np.tile(np.arange(len(candidates)), (len(rows), 1))
            )
            ps = np.take_along_axis(s, part, axis=1)
            order = np.argsort(-ps, axis=1, kind="stable")
            ids[rows, :kk] = candidates[np.take_along_axis(part, order, axis=1)]
            sims[rows, :kk] = np.take_along_axis(ps, order, axis=1)
    return ids, sims
