"""The Recommender contract and the simplest recommenders.

A recommender is fitted on a :class:`~personas.data.Dataset` (and optionally the users' group labels, an
int array with one entry per user row, -1 = no group) and then ranks items for users in batches:

    ids, scores = model.recommend(["196", "186"], n=10)

``ids`` are item rows (``dataset.item_vocab.id(row)`` gives the external id), ``scores`` are sorted in
descending order per user. Users the model has never seen do not crash a batch: they get the model's
fallback ranking (most popular items) and are listed in ``Recommendations.unknown``.

Subclasses implement ``_fit`` and ``_score`` (a dense users x items score block for known user rows);
the base class does validation, seen-item exclusion, deterministic tie-breaking and top-n selection.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from personas.config import ComponentConfig
from personas.data import Dataset
from personas.errors import ConfigError, DataError, NotFittedError

__all__ = ["MostPopular", "Random", "Recommendations", "Recommender", "top_n"]


@dataclass(frozen=True)
class Recommendations:
    """Top-n item rows and scores per user; unpacks as ``ids, scores``."""

    ids: np.ndarray  # (u, n) int64 item rows; -1 pads when fewer than n items can be recommended
    scores: np.ndarray  # (u, n) float64, descending per row; -inf where ids is -1
    unknown: list[str] = field(default_factory=list)  # user ids that got the fallback

    def __iter__(self) -> Iterator[np.ndarray]:
        yield self.ids
        yield self.scores


def tie_break_noise(n_items: int, seed: int = 0) -> np.ndarray:
    """A fixed random order used to break score ties, tiny compared with any real score difference.

    Breaking ties by lower item id leaks popularity on MovieLens (ids correlate with popularity), so ties
    are broken by a seeded permutation instead.
    """
    order = np.random.default_rng(seed).permutation(n_items)
    return order.astype(np.float64) * 1e-12


def top_n(scores: np.ndarray, n: int, *, exclude: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``scores`` (u x items) -> the n best item columns and their scores, descending.

    ``exclude`` (u x items, nonzero = excluded) masks items out; when fewer than n remain, ids are -1 and
    scores -inf at the end of the row.
    """
    scores = np.array(scores, dtype=np.float64, copy=True)
    if exclude is not None and exclude.nnz:
        rows, cols = exclude.nonzero()
        scores[rows, cols] = -np.inf
    n_items = scores.shape[1]
    k = min(n, n_items)
    if k == 0:
        return np.full((scores.shape[0], n), -1, dtype=np.int64), np.full((scores.shape[0], n), -np.inf)
    part = (
        np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n_items else np.tile(np.arange(n_items), (len(scores), 1))
    )
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    best = np.take_along_axis(part_scores, order, axis=1)
    ids[~np.isfinite(best)] = -1
    if k < n:
        ids = np.hstack([ids, np.full((len(ids), n - k), -1, dtype=np.int64)])
        best = np.hstack([best, np.full((len(best), n - k), -np.inf)])
    return ids, best


class Recommender(ABC):
    """Base class: ``fit(dataset, groups=None)``, then ``recommend(user_ids, n)``."""

    Config: ClassVar[type[ComponentConfig]] = ComponentConfig
    config: ComponentConfig

    def __init__(self, config: ComponentConfig | None = None, **params: Any) -> None:
        if config is not None and params:
            raise ConfigError(f"{type(self).__name__}: pass either a config or keyword parameters, not both.")
        self.config = config if config is not None else self.Config(**params)

    # -- to implement ---------------------------------------------------------------------------------
    @abstractmethod
    def _fit(self, dataset: Dataset, groups: np.ndarray | None) -> None:
        """Learn from the dataset; set fitted state in attributes ending in ``_``."""

    @abstractmethod
    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        """Scores (len(user_rows) x n_items) for known user rows; higher is better."""

    # -- shared behaviour ----------------------------------------------------------------------------
    def fit(self, dataset: Dataset, *, groups: np.ndarray | None = None) -> Self:
        if dataset.n_interactions == 0 or dataset.n_items == 0:
            raise DataError(
                f"{type(self).__name__}.fit: dataset {dataset.name!r} has no interactions; "
                "a recommender needs at least one interaction to learn from."
            )
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (dataset.n_users,) or not np.issubdtype(groups.dtype, np.integer):
                raise DataError(
                    f"{type(self).__name__}.fit: groups must be an int array with one label per user "
                    f"({dataset.n_users}); got dtype {groups.dtype} and shape {groups.shape}."
                )
        self.dataset_ = dataset
        self.seen_ = dataset.matrix("binary")
        self.popularity_ = np.asarray(self.seen_.sum(axis=0)).ravel()
        self.tie_break_ = tie_break_noise(dataset.n_items)
        self._fit(dataset, groups)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "dataset_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with a dataset first."
            )

    def fallback_scores(self, count: int) -> np.ndarray:
        """Scores for users the model knows nothing about: global popularity."""
        return np.tile(self.popularity_.astype(np.float64), (count, 1))

    def recommend(self, user_ids: Sequence[str], n: int, *, exclude_seen: bool = True) -> Recommendations:
        """The top-n items for each user id (external ids). Unknown ids get the fallback ranking."""
        self._check_fitted()
        if not isinstance(n, int | np.integer) or n < 1:
            raise ConfigError(f"The 'n' parameter of recommend must be an int >= 1. Got {n!r} instead.")
        rows = self.dataset_.user_vocab.rows(user_ids, missing="mask")
        known = rows >= 0
        scores = np.empty((len(rows), self.dataset_.n_items))
        if known.any():
            scores[known] = self._score(rows[known])
        if (~known).any():
            scores[~known] = self.fallback_scores(int((~known).sum()))
        scores += self.tie_break_
        exclude = None
        if exclude_seen:
            # Seen rows of known users; unknown users have nothing to exclude (their row is zeroed).
            exclude = sp.diags(known.astype(np.float64)) @ self.seen_[np.where(known, rows, 0)]
            exclude.eliminate_zeros()
        ids, best = top_n(scores, int(n), exclude=exclude)
        unknown = [str(u) for u, ok in zip(user_ids, known, strict=True) if not ok]
        return Recommendations(ids, best, unknown)

    def score_rows(self, user_rows: np.ndarray) -> np.ndarray:
        """Raw scores for known user rows (evaluation uses this for full ranking)."""
        self._check_fitted()
        return self._score(np.asarray(user_rows, dtype=np.int64))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


class RandomConfig(ComponentConfig):
    seed: int = 0


class Random(Recommender):
    """Uniformly random scores (seeded): the floor every model must beat."""

    Config = RandomConfig

    def _fit(self, dataset: Dataset, groups: np.ndarray | None) -> None:
        self.n_items_ = dataset.n_items

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        seed = self.config.seed if isinstance(self.config, RandomConfig) else 0
        # One generator per user row: the same user gets the same ranking whatever the batch.
        return np.vstack([np.random.default_rng([seed, int(r)]).random(self.n_items_) for r in user_rows])


class MostPopular(Recommender):
    """Items ranked by how many users interacted with them: the same list for everyone."""

    def _fit(self, dataset: Dataset, groups: np.ndarray | None) -> None:
        self.item_scores_ = self.popularity_.astype(np.float64)

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return np.tile(self.item_scores_, (len(user_rows), 1))
