"""Density-based groups (HDBSCAN) with an explicit rule for users who fit no group.

Noise rule: HDBSCAN labels a user ``-1`` when it falls outside every dense region that persists with at
least ``min_group_size`` members. ``noise`` decides what happens to them:

- ``"keep"``: they stay ``-1`` (reported as noise; personas describe only real groups);
- ``"nearest"``: each is given to the group with the most cosine-similar centroid (centroids are computed
  from the core members first, so noise does not pull them). BERTopic users report 30-50% outliers; this
  is the fix they ask for.

``assign`` uses the same rule for new users: nearest centroid, and with ``noise="keep"`` a user less
similar to that centroid than the group's least similar member (``radius_``) is noise.

No group at all: HDBSCAN finds none when the vectors hold no region denser than the rest (common for
sentence vectors in 384 dimensions, where distances concentrate). Rather than hand on zero personas,
``fallback`` decides: ``"kmeans"`` (spherical k-means, k chosen by :func:`choose_k` among 2..8) or
``"one-group"``; either is reported in ``report_.fallback`` and warned about.
"""

# ruff: noqa: N803  (X is a matrix, as in scikit-learn)

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from pydantic import Field

from personas.config import ComponentConfig
from personas.discover._base import NOISE, BaseGroupFinder, GroupingWarning, as_unit_vectors, nearest_centroid
from personas.discover.kmeans import KMeansGroups
from personas.discover.selection import choose_k
from personas.errors import ConfigError

__all__ = ["HDBSCANConfig", "HDBSCANGroups"]


class HDBSCANConfig(ComponentConfig):
    method: Literal["hdbscan"] = "hdbscan"
    min_group_size: int = Field(10, ge=2, description="Smallest group worth a persona.")
    min_samples: int | None = Field(None, ge=1, description="Density smoothing; None = min_group_size.")
    noise: Literal["keep", "nearest"] = "keep"
    selection: Literal["eom", "leaf"] = "eom"
    fallback: Literal["kmeans", "one-group"] = Field(
        "kmeans", description="When HDBSCAN finds no group: k-means with k chosen automatically, or one group."
    )
    fallback_seed: int = Field(0, description="Seed of the k-means fallback (HDBSCAN itself is deterministic).")


class HDBSCANGroups(BaseGroupFinder[HDBSCANConfig]):
    """HDBSCAN on unit vectors (Euclidean distance there is a monotone function of cosine distance).

    ``noise_share_`` is the share of users HDBSCAN left as noise, before any ``noise="nearest"`` rule.
    """

    Config = HDBSCANConfig

    def fit(self, X: np.ndarray) -> HDBSCANGroups:
        try:
            import hdbscan
        except ImportError:
            raise ConfigError("HDBSCANGroups needs hdbscan: pip install 'personas[cluster]'.") from None
        name = type(self).__name__
        arr = as_unit_vectors(X, owner=f"{name}.fit")
        n = arr.shape[0]
        cfg = self.config
        if cfg.min_group_size > n:
            raise ConfigError(
                f"The 'min_group_size' parameter of {name} must be an int in [2, n_users={n}]. "
                f"Got {cfg.min_group_size} instead."
            )
        min_samples = min(cfg.min_samples or cfg.min_group_size, n - 1) if n > 1 else 1
        if n < 3 or np.ptp(arr, axis=0).max() == 0:  # one point or all identical: one dense group
            raw = np.zeros(n, dtype=np.int64)
        else:
            model = hdbscan.HDBSCAN(
                min_cluster_size=cfg.min_group_size,
                min_samples=max(min_samples, 1),
                cluster_selection_method=cfg.selection,
                metric="euclidean",
                core_dist_n_jobs=1,
            )
            raw = model.fit_predict(arr.astype(np.float64)).astype(np.int64)
        self.noise_share_ = float(np.mean(raw < 0))
        fallback = None
        if not (raw >= 0).any():
            raw, fallback = self._fallback(arr)
        self._set_result(arr, raw)
        _, sims = nearest_centroid(arr, self.centroids_)
        members = self.labels_ >= 0
        self.radius_ = np.full(self.n_groups_, 1.0, dtype=np.float32)
        if members.any():
            np.minimum.at(self.radius_, self.labels_[members], sims[members])
        if cfg.noise == "nearest" and self.n_groups_ > 0 and not members.all():
            labels, _ = nearest_centroid(arr, self.centroids_)
            self.labels_ = np.where(members, self.labels_, labels)
            self.sizes_ = np.bincount(self.labels_, minlength=self.n_groups_).astype(np.int64)
        self._check_result(unassigned_share=self.noise_share_, fallback=fallback)
        return self

    def _fallback(self, arr: np.ndarray) -> tuple[np.ndarray, str]:
        """Labels when HDBSCAN found no group, and the sentence that says what was done instead."""
        n = arr.shape[0]
        why = f"HDBSCAN found no group of at least min_group_size = {self.config.min_group_size} users"
        candidates = [k for k in range(2, 9) if k < n]
        if self.config.fallback == "one-group" or len(candidates) < 2:
            return np.zeros(n, dtype=np.int64), f'{why}; all users form one group instead (fallback = "one-group")'
        with warnings.catch_warnings():  # the candidates' own checks; the result is checked once, below
            warnings.simplefilter("ignore", GroupingWarning)
            base = KMeansGroups(seed=self.config.fallback_seed)
            k = choose_k(arr, candidates, finder=base, seed=self.config.fallback_seed).k
            labels = base.with_params(k=k).fit(arr).labels_
        return labels, (
            f"{why}; used spherical k-means with k = {k} (chosen by silhouette and stability) instead. "
            'Lower min_group_size, or set method = "kmeans" to choose the groups yourself'
        )

    def _hints(self) -> dict[str, str]:
        cfg = self.config
        return {
            "noise": (
                f'set noise = "nearest" to give each to its nearest group, or lower min_group_size '
                f"(now {cfg.min_group_size})"
            ),
            "largest": f'lower min_group_size (now {cfg.min_group_size}) or set selection = "leaf"',
            "few": f'lower min_group_size (now {cfg.min_group_size}) or use method = "kmeans"',
        }

    def assign(self, X: np.ndarray) -> np.ndarray:
        arr = self._check_assign_input(X)
        labels, sims = nearest_centroid(arr, self.centroids_)
        if self.config.noise == "keep" and self.n_groups_ > 0:
            labels = np.where(sims >= self.radius_[labels] - 1e-6, labels, NOISE)
        return labels
