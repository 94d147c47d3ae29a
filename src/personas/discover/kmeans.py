"""Spherical k-means: groups of users whose vectors point the same way (cosine), on unit vectors.

Two engines, both seeded by greedy k-means++ and giving the same optima on easy data: faiss (multi-threaded;
``auto`` uses it when installed and n * k > 200,000) and a plain numpy Lloyd loop (no extra dependency;
faster on small inputs, where faiss's thread start-up dominates).
"""

# ruff: noqa: N803  (X is a matrix, as in scikit-learn)

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from personas.config import ComponentConfig
from personas.discover._base import BaseGroupFinder, as_unit_vectors, group_sums, nearest_centroid, warn_if_fewer
from personas.errors import ConfigError

__all__ = ["KMeansConfig", "KMeansGroups", "spherical_kmeans"]

# k-means++ seeding for the faiss engine runs on a sample of this many rows per group (plus 1,000): its
# cost grows with k x sample, and more rows do not seed measurably better (bench/cluster.py).
_SEED_ROWS_PER_GROUP = 40
#: Relative difference under which two seeding candidates or two restarts count as equally good (float32
#: rounding of the similarities they are summed from); the first one is kept, so the choice does not hang
#: on the BLAS thread count.
_TIE = 1e-6


class KMeansConfig(ComponentConfig):
    method: Literal["kmeans"] = "kmeans"
    k: int = Field(8, ge=1, description="Number of groups.")
    n_init: int = Field(3, ge=1, description="Restarts; the run with the best objective wins.")
    max_iter: int = Field(25, ge=1, description="Lloyd iterations per run.")
    sample_per_centroid: int | None = Field(
        256,
        ge=1,
        description="faiss engine: the first max_iter iterations use at most this many random rows per group "
        "(None = all rows); refine_iter iterations on all rows follow.",
    )
    refine_iter: int = Field(4, ge=0, description="faiss engine: final iterations over all rows.")
    engine: Literal["auto", "faiss", "numpy"] = "auto"
    seed: int = 0


def _faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _kmeans_pp(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeding with cosine distance (1 - cos) on unit rows: each step draws
    ``2 + log k`` candidates in proportion to their distance and keeps the one that lowers the total most."""
    n = X.shape[0]
    trials = 2 + int(np.log(k))
    centers = np.empty((k, X.shape[1]), dtype=np.float32)
    centers[0] = X[int(rng.integers(n))]
    dist = np.maximum(1.0 - X @ centers[0], 0.0).astype(np.float64)
    for j in range(1, k):
        total = dist.sum()
        # when every row already sits on a centre (duplicates), any row will do
        cand = rng.integers(n, size=1) if total <= 0 else rng.choice(n, size=trials, p=dist / total)
        cand_dist = np.minimum(dist[None, :], np.maximum(1.0 - X[cand] @ X.T, 0.0))
        # Candidates within float32 rounding of the best are a tie (duplicate rows, or one row drawn twice, can
        # differ in the last bits by where BLAS puts them): the lowest row index wins, at any thread count.
        totals = cand_dist.sum(axis=1, dtype=np.float64)
        near = np.flatnonzero(totals <= totals.min() + _TIE * max(totals.min(), 1.0))
        best = int(near[np.argmin(cand[near])])
        centers[j] = X[cand[best]]
        dist = cand_dist[best]
    return centers


def _lloyd_numpy(X: np.ndarray, k: int, max_iter: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    centers = _kmeans_pp(X, k, rng)
    labels = np.full(X.shape[0], -1, dtype=np.int64)
    for _ in range(max_iter):
        new_labels, _ = nearest_centroid(X, centers)
        sums = group_sums(X, new_labels, k)
        norms = np.linalg.norm(sums, axis=1)
        empty = norms == 0
        if empty.any():  # re-seed an empty group with the rows farthest from their centre
            sims = np.einsum("ij,ij->i", X.astype(np.float64), centers[new_labels].astype(np.float64))
            far = np.argsort(sims, kind="stable")[: int(empty.sum())]
            sums[empty] = X[far]
            norms[empty] = 1.0
        centers = (sums / norms[:, None]).astype(np.float32)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    labels, sims = nearest_centroid(X, centers)
    return centers, float(np.sum(2.0 - 2.0 * sims.astype(np.float64)))


def _faiss_kmeans(X: np.ndarray, config: KMeansConfig) -> np.ndarray:
    import faiss

    n, d = X.shape
    best: tuple[float, np.ndarray] | None = None
    for run in range(config.n_init):
        rng = np.random.default_rng([config.seed, run])
        everything = n // config.k + 1

        def train(niter: int, per_centroid: int, init: np.ndarray, run: int = run) -> np.ndarray:
            km = faiss.Kmeans(
                d,
                config.k,
                niter=niter,
                seed=config.seed + run,
                spherical=True,
                verbose=False,
                min_points_per_centroid=1,  # small data is fine; do not warn
                max_points_per_centroid=per_centroid,
            )
            km.train(X, init_centroids=init)
            return np.asarray(km.centroids, dtype=np.float32)

        # faiss seeds with random rows; k-means++ seeding (on a sample, to bound its cost) reaches better
        # optima for the same number of iterations. Most iterations run on a sample (cheap, and they only
        # need to find the rough layout); the last ones use every row, so the objective is the full one.
        limit = _SEED_ROWS_PER_GROUP * config.k + 1000
        sample = X if n <= limit else X[np.sort(rng.choice(n, limit, replace=False))]
        per_centroid = config.sample_per_centroid or everything
        centers = train(config.max_iter, per_centroid, _kmeans_pp(sample, config.k, rng))
        if config.refine_iter and per_centroid < everything:
            centers = train(config.refine_iter, everything, centers)
        if config.n_init == 1:
            return centers
        score = float(nearest_centroid(X, centers)[1].sum(dtype=np.float64))  # higher = tighter groups
        if best is None or score > best[0] + _TIE * max(abs(best[0]), 1.0):
            best = (score, centers)
    assert best is not None
    return best[1]


def spherical_kmeans(X: np.ndarray, config: KMeansConfig) -> np.ndarray:
    """Centroids (k, d), unit rows, of spherical k-means on unit rows ``X``."""
    engine = config.engine
    if engine == "auto":  # faiss's thread start-up costs more than it saves on small inputs
        engine = "faiss" if _faiss_available() and X.shape[0] * config.k > 200_000 else "numpy"
    if engine == "faiss":
        if not _faiss_available():
            raise ConfigError("KMeansGroups(engine='faiss') needs faiss: pip install 'personas[cluster]'.")
        return _faiss_kmeans(X, config)
    best: tuple[np.ndarray, float] | None = None
    for run in range(config.n_init):
        rng = np.random.default_rng([config.seed, run])
        result = _lloyd_numpy(X, config.k, config.max_iter, rng)
        if best is None or result[1] < best[1] - _TIE * max(best[1], 1.0):
            best = result
    assert best is not None
    return best[0]


class KMeansGroups(BaseGroupFinder[KMeansConfig]):
    """Spherical k-means (cosine) with ``k`` groups; ``assign`` is the nearest centroid.

    ``inertia_`` is the objective: the sum over users of ``|x - c|^2 = 2 - 2 cos(x, c)`` to their group's
    unit centroid. Groups that end up empty (duplicate vectors) are dropped with a warning, so
    ``n_groups_`` can be smaller than ``k``.
    """

    Config = KMeansConfig

    def fit(self, X: np.ndarray) -> KMeansGroups:
        name = type(self).__name__
        arr = as_unit_vectors(X, owner=f"{name}.fit")
        n = arr.shape[0]
        if self.config.k > n:
            raise ConfigError(
                f"The 'k' parameter of {name} must be an int in [1, n_users={n}]. Got {self.config.k} instead: "
                "ask for fewer groups or give more users."
            )
        centers = spherical_kmeans(arr, self.config)
        # The final assignment in float64 with ties to the lowest centre, then groups numbered by size and
        # first member (_set_result): the same labels at any BLAS thread count and on any BLAS kernel.
        labels, sims = nearest_centroid(arr, centers, exact=True)
        self._set_result(arr, labels, centers)  # reorders the centres, so each row's similarity is unchanged
        self.inertia_ = float(np.sum(2.0 - 2.0 * sims.astype(np.float64)))
        warn_if_fewer(name, self.n_groups_, self.config.k)
        self._check_result()
        return self

    def _hints(self) -> dict[str, str]:
        return {
            "largest": (
                f"the vectors hardly separate at k = {self.config.k}: try a larger k, another text encoder "
                "(kind), or less behaviour (behaviour_weight)"
            ),
            "few": "ask for k >= 2, or check for duplicate vectors",
        }
