"""Communities on a k-nearest-neighbour graph (Leiden, via igraph + leidenalg).

Each user links to its ``n_neighbors`` most cosine-similar users; edges below ``min_similarity`` are
dropped (the "similarity threshold"), so users with no similar enough neighbour end up alone. Leiden then
finds communities maximising modularity (``resolution`` > 1 gives more, smaller groups).

Noise rule: communities smaller than ``min_group_size`` are labelled ``-1`` (with the default 1, none).
``assign`` gives a new user the group most common among its ``n_neighbors`` nearest training users
(similarity-weighted, the same edges fit used); a user with no neighbour above the threshold is ``-1``.
"""

# ruff: noqa: N803  (X is a matrix, as in scikit-learn)

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from personas.config import ComponentConfig
from personas.discover._base import NOISE, BaseGroupFinder, as_unit_vectors
from personas.discover.neighbours import KNNIndex, NeighboursConfig, knn_graph
from personas.errors import ConfigError

__all__ = ["LeidenConfig", "LeidenGroups"]


class LeidenConfig(ComponentConfig):
    method: Literal["leiden"] = "leiden"
    n_neighbors: int = Field(15, ge=1)
    min_similarity: float = Field(0.0, ge=-1.0, le=1.0, description="Edges below this cosine are dropped.")
    resolution: float = Field(1.0, gt=0.0)
    min_group_size: int = Field(1, ge=1)
    n_iterations: int = Field(-1, description="Leiden passes; -1 = until stable.")
    neighbours: NeighboursConfig = Field(default_factory=NeighboursConfig)
    seed: int = 0


class LeidenGroups(BaseGroupFinder[LeidenConfig]):
    """Leiden communities (modularity with a resolution) on a thresholded cosine kNN graph."""

    Config = LeidenConfig

    def fit(self, X: np.ndarray) -> LeidenGroups:
        try:
            import igraph
            import leidenalg
        except ImportError:
            raise ConfigError("LeidenGroups needs igraph and leidenalg: pip install 'personas[cluster]'.") from None
        name = type(self).__name__
        arr = as_unit_vectors(X, owner=f"{name}.fit")
        cfg = self.config
        n = arr.shape[0]
        graph = knn_graph(arr, cfg.n_neighbors, min_similarity=cfg.min_similarity, config=cfg.neighbours)
        upper = sp.triu(graph, k=1).tocoo()
        g = igraph.Graph(n=n, edges=np.column_stack([upper.row, upper.col]).tolist(), directed=False)
        g.es["weight"] = upper.data.astype(float).tolist()
        partition = leidenalg.find_partition(
            g,
            leidenalg.RBConfigurationVertexPartition,
            weights="weight",
            resolution_parameter=cfg.resolution,
            n_iterations=cfg.n_iterations,
            seed=cfg.seed,
        )
        raw = np.asarray(partition.membership, dtype=np.int64)
        counts = np.bincount(raw)
        raw = np.where(counts[raw] >= cfg.min_group_size, raw, NOISE)
        self.graph_ = graph
        self.modularity_ = float(partition.modularity)
        self._set_result(arr, raw)
        self._index = KNNIndex(cfg.neighbours).build(arr)
        self._check_result()
        return self

    def _hints(self) -> dict[str, str]:
        cfg = self.config
        return {
            "noise": (
                f"they sit in communities smaller than min_group_size = {cfg.min_group_size}, or have no neighbour "
                f"above min_similarity = {cfg.min_similarity}: lower one of them"
            ),
            "largest": f"raise resolution (now {cfg.resolution:g}) for more, smaller groups",
            "few": f"raise resolution (now {cfg.resolution:g}) or lower min_similarity (now {cfg.min_similarity:g})",
        }

    def assign(self, X: np.ndarray) -> np.ndarray:
        arr = self._check_assign_input(X)
        cfg = self.config
        ids, sims = self._index.search(arr, cfg.n_neighbors)
        votes = np.zeros((arr.shape[0], max(self.n_groups_, 1)), dtype=np.float64)
        valid = (ids >= 0) & (sims >= cfg.min_similarity) & (sims > 0)
        neighbour_labels = np.where(valid, self.labels_[np.maximum(ids, 0)], NOISE)
        valid &= neighbour_labels >= 0
        rows = np.repeat(np.arange(arr.shape[0]), ids.shape[1]).reshape(ids.shape)
        np.add.at(votes, (rows[valid], neighbour_labels[valid]), sims[valid])
        labels = np.argmax(votes, axis=1)
        return np.where(votes.max(axis=1) > 0, labels, NOISE).astype(np.int64)
