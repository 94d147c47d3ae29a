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
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp

from personas import store
from personas.config import Component, ComponentConfig, registry
from personas.data import Dataset, Vocabulary
from personas.errors import ConfigError, DataError, NotFittedError

__all__ = ["MostPopular", "NewUser", "Random", "Recommendations", "Recommender", "normalise_rows", "top_n"]


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


def normalise_rows(scores: np.ndarray) -> np.ndarray:
    """Per-row z-scores, so that scores of different models can be blended; constant rows become 0."""
    scores = np.asarray(scores, dtype=np.float64)
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    safe = np.where(std > 0, std, 1.0)
    return np.where(std > 0, (scores - mean) / safe, 0.0)


class Recommender(Component[ComponentConfig], ABC):
    """Base class: ``fit(dataset, groups=None)``, then ``recommend(user_ids, n)``.

    Subclasses implement ``_fit`` and ``_score``; to be saved they list their learned arrays in
    ``_state``/``_set_state``; to serve users never seen they override ``_score_new``. The constructor
    (``Model(config)`` or ``Model(**params)``) and the registration by kind come from
    :class:`~personas.config.Component`.
    """

    config: ComponentConfig

    # -- to implement ---------------------------------------------------------------------------------
    @abstractmethod
    def _fit(self, dataset: Dataset, groups: np.ndarray | None) -> None:
        """Learn from the dataset; set fitted state in attributes ending in ``_``."""

    @abstractmethod
    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        """Scores (len(user_rows) x n_items) for known user rows; higher is better."""

    def _score_new(self, query: NewUser) -> np.ndarray:
        """Scores (n_items,) for a user never seen. Default: the fallback (global popularity)."""
        return self.fallback_scores(1)[0]

    def _state(self) -> dict[str, np.ndarray]:
        """The learned arrays that ``save`` writes (besides the shared ones)."""
        return {}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what ``_state`` returned."""
        del arrays  # models without learned arrays of their own have nothing to restore

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
            if (groups < -1).any():
                raise DataError(f"{type(self).__name__}.fit: group labels must be >= 0, or -1 for no group.")
            groups = groups.astype(np.int64)
        self.dataset_ = dataset
        self.user_vocab_ = dataset.user_vocab
        self.item_vocab_ = dataset.item_vocab
        self.n_items_ = dataset.n_items
        self.seen_ = dataset.matrix("binary")
        self.popularity_ = np.asarray(self.seen_.sum(axis=0)).ravel().astype(np.float64)
        self.tie_break_ = tie_break_noise(dataset.n_items)
        self._fit(dataset, groups)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "user_vocab_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with a dataset first."
            )

    @staticmethod
    def _check_n(n: object) -> int:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ConfigError(f"The 'n' parameter of recommend must be an int >= 1. Got {n!r} instead.")
        return int(n)

    def fallback_scores(self, count: int) -> np.ndarray:
        """Scores for users the model knows nothing about: global popularity."""
        return np.tile(self.popularity_.astype(np.float64), (count, 1))

    def recommend(self, user_ids: Sequence[str], n: int, *, exclude_seen: bool = True) -> Recommendations:
        """The top-n items for each user id (external ids). Unknown ids get the fallback ranking."""
        self._check_fitted()
        n = self._check_n(n)
        user_ids = [str(u) for u in user_ids]
        rows = self.user_vocab_.rows(user_ids, missing="mask")
        known = rows >= 0
        scores = np.empty((len(rows), self.n_items_))
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
        ids, best = top_n(scores, n, exclude=exclude)
        unknown = [u for u, ok in zip(user_ids, known, strict=True) if not ok]
        return Recommendations(ids, best, unknown)

    def recommend_new(
        self,
        *,
        text: str | None = None,
        vector: np.ndarray | None = None,
        history: Sequence[str] | None = None,
        group: int | None = None,
        n: int = 10,
        exclude_seen: bool = True,
    ) -> Recommendations:
        """The top-n items for one user never seen, from any of: their profile ``text``, a ``vector`` (in the
        space of the vectors the model was given), a ``history`` of item ids, a ``group`` label.

        Item ids of the history that the model does not know are ignored and listed in ``unknown``.
        """
        self._check_fitted()
        n = self._check_n(n)
        history = [str(i) for i in (history or [])]
        item_rows = self.item_vocab_.rows(history, missing="mask")
        unknown = [i for i, r in zip(history, item_rows, strict=True) if r < 0]
        item_rows = np.unique(item_rows[item_rows >= 0])
        hist = sp.csr_matrix(
            (np.ones(len(item_rows)), (np.zeros(len(item_rows), dtype=np.int64), item_rows)),
            shape=(1, self.n_items_),
        )
        if vector is not None:
            vector = np.asarray(vector, dtype=np.float64).ravel()
        query = NewUser(text=text, vector=vector, history=hist, group=group)
        scores = np.asarray(self._score_new(query), dtype=np.float64).reshape(1, -1) + self.tie_break_
        ids, best = top_n(scores, n, exclude=hist if exclude_seen else None)
        return Recommendations(ids, best, unknown)

    def score_rows(self, user_rows: np.ndarray) -> np.ndarray:
        """Raw scores for known user rows (evaluation uses this for full ranking)."""
        self._check_fitted()
        return self._score(np.asarray(user_rows, dtype=np.int64))

    # -- persistence ---------------------------------------------------------------------------------
    def _shared_state(self) -> dict[str, np.ndarray]:
        return {
            "user_ids": np.asarray(self.user_vocab_.ids, dtype=str),
            "item_ids": np.asarray(self.item_vocab_.ids, dtype=str),
            "seen_indptr": self.seen_.indptr,
            "seen_indices": self.seen_.indices,
            "popularity": self.popularity_,
            "tie_break": self.tie_break_,
        }

    def save(self, folder: str | Path) -> Path:
        """Write the fitted model to ``folder`` as arrays + JSON (see :mod:`personas.store`)."""
        self._check_fitted()
        arrays = self._shared_state()
        arrays.update({f"model.{name}": value for name, value in self._state().items()})
        meta = {"class": type(self).__name__, "config": self.config.model_dump(mode="json")}
        return store.save(folder, arrays, meta)

    @classmethod
    def load(cls, folder: str | Path) -> Recommender:
        """Read a model written by :meth:`save`; it recommends exactly as the saved one did."""
        arrays, meta = store.load(folder)
        name = meta.get("class")
        klass = registry.by_class_name(str(name), Recommender)
        if klass is None:
            raise DataError(f"{folder}: saved model class {name!r} is not a personas recommender.")
        if cls is not Recommender and not issubclass(klass, cls):
            raise DataError(f"{folder}: holds a {name}, not a {cls.__name__}.")
        model = klass(klass.Config.model_validate(meta["config"]))
        model._restore_shared(arrays)
        model._set_state({k.removeprefix("model."): v for k, v in arrays.items() if k.startswith("model.")})
        return model

    def _share_fitted_base(self, other: Recommender) -> None:
        """Give ``other`` this model's shared fitted state (composite models restore their parts with it)."""
        other.user_vocab_ = self.user_vocab_
        other.item_vocab_ = self.item_vocab_
        other.n_items_ = self.n_items_
        other.seen_ = self.seen_
        other.popularity_ = self.popularity_
        other.tie_break_ = self.tie_break_

    def _restore_shared(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_vocab_ = Vocabulary(arrays["user_ids"].tolist(), kind="user")
        self.item_vocab_ = Vocabulary(arrays["item_ids"].tolist(), kind="item")
        self.n_items_ = len(self.item_vocab_)
        indices = arrays["seen_indices"]
        self.seen_ = sp.csr_matrix(
            (np.ones(len(indices)), indices, arrays["seen_indptr"]), shape=(len(self.user_vocab_), self.n_items_)
        )
        self.popularity_ = arrays["popularity"]
        self.tie_break_ = arrays["tie_break"]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


@dataclass(frozen=True)
class NewUser:
    """What is known about a user never seen; any field may be empty."""

    text: str | None
    vector: np.ndarray | None
    history: sp.csr_matrix  # (1, n_items) binary
    group: int | None

    @property
    def n_history(self) -> int:
        return int(self.history.nnz)


class RandomConfig(ComponentConfig):
    kind: ClassVar[str] = "random"
    seed: int = 0


class MostPopularConfig(ComponentConfig):
    kind: ClassVar[str] = "most_popular"


class Random(Recommender):
    """Uniformly random scores (seeded): the floor every model must beat."""

    Config = RandomConfig

    def _fit(self, dataset: Dataset, groups: np.ndarray | None) -> None:
        pass  # nothing to learn

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        seed = self.config.seed if isinstance(self.config, RandomConfig) else 0
        # One generator per user row: the same user gets the same ranking whatever the batch.
        return np.vstack([np.random.default_rng([seed, int(r)]).random(self.n_items_) for r in user_rows])


class MostPopular(Recommender):
    """Items ranked by how many users interacted with them: the same list for everyone."""

    Config = MostPopularConfig

    def _fit(self, dataset: Dataset, groups: np.ndarray | None) -> None:
        pass  # the base class already counted popularity_

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return np.tile(self.popularity_, (len(user_rows), 1))
