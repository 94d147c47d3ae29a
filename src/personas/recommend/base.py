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

import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from personas import store
from personas.config import Component, ComponentConfig, registry
from personas.data import Dataset, Vocabulary
from personas.errors import ConfigError, DataError, NotFittedError
from personas.recommend._rows import forget_last_calls
from personas.recommend.placement import GroupPlacer

__all__ = [
    "ITEM_PARTS",
    "NO_REASON",
    "SAVED_FORMAT",
    "FitInputs",
    "MostPopular",
    "NewUser",
    "Random",
    "Reason",
    "Recommendations",
    "Recommender",
    "blended_parts",
    "history_row",
    "leading_parts",
    "normalise_rows",
    "reason_phrases",
    "split_group_part",
    "stable_prefix",
    "top_n",
]

#: The version of a saved model's layout (arrays and meta); models saved with another are refused on load.
#: 2: composite models save their parts under the part's name (``warm.``, ``item_knn.``, ...) and the router's
#: side text and ridge under ``side.`` and ``side_ridge.``.
SAVED_FORMAT = 2


@dataclass(frozen=True, eq=False)
class FitInputs:
    """What a recommender is fitted on: the dataset, and optionally arrays made by other stages (the pipeline
    encodes text; recommend never does). Validated by :meth:`Recommender.fit`."""

    dataset: Dataset
    groups: np.ndarray | None = None  # (n_users,) int, -1 = no group
    user_vectors: np.ndarray | None = None  # (n_users, d)
    centroids: np.ndarray | None = None  # (n_groups, d), in the space of user_vectors
    item_vectors: np.ndarray | None = None  # (n_items, d'): item features for content models
    # (n_items, d): the items' own texts encoded like the users' texts (the language-model space of user_vectors)
    item_text_vectors: np.ndarray | None = None
    # (n_users, d): each user's own words and demographics (not their items) encoded like item_text_vectors;
    # zero rows for users with none. What a new user's text looks like when it is a profile, not a wish.
    side_vectors: np.ndarray | None = None


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


def history_row(item_rows: np.ndarray, n_items: int) -> sp.csr_matrix:
    """One user's taken items (distinct item rows) as a binary 1 x items row, the form ``NewUser`` holds."""
    item_rows = np.asarray(item_rows, dtype=np.int64).ravel()
    if item_rows.size == 0 or (
        item_rows[0] >= 0 and item_rows[-1] < n_items and bool(np.all(item_rows[1:] > item_rows[:-1]))
    ):
        # Distinct and in order (np.unique's output, the usual case): the row is these arrays as they are, the
        # same matrix the coordinate form below gives, without its conversion (this runs several times per
        # new user's request).
        indptr = np.array([0, item_rows.size], dtype=np.int32)
        return sp.csr_matrix((np.ones(item_rows.size), item_rows.astype(np.int32), indptr), shape=(1, n_items))
    return sp.csr_matrix(
        (np.ones(len(item_rows)), (np.zeros(len(item_rows), dtype=np.int64), item_rows)), shape=(1, n_items)
    )


def normalise_rows(scores: np.ndarray) -> np.ndarray:
    """Per-row z-scores, so that scores of different models can be blended; constant rows become 0."""
    scores = np.asarray(scores, dtype=np.float64)
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    safe = np.where(std > 0, std, 1.0)
    return np.where(std > 0, (scores - mean) / safe, 0.0)


def _rows_per(owner: str, name: str, vectors: np.ndarray | None, n_rows: int, what: str) -> np.ndarray | None:
    """``vectors`` as a float64 matrix with one row per user or item, or a DataError saying what it got."""
    if vectors is None:
        return None
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != n_rows:
        raise DataError(f"{owner}.fit: {name} must have one row per {what} ({n_rows}); got shape {vectors.shape}.")
    return vectors


def _checked_inputs(
    owner: str,
    dataset: Dataset,
    groups: np.ndarray | None,
    user_vectors: np.ndarray | None,
    centroids: np.ndarray | None,
    item_vectors: np.ndarray | None,
    item_text_vectors: np.ndarray | None = None,
    side_vectors: np.ndarray | None = None,
) -> FitInputs:
    """The fit inputs as arrays of the right type, or a DataError naming what is wrong."""
    if dataset.n_interactions == 0 or dataset.n_items == 0:
        raise DataError(
            f"{owner}.fit: dataset {dataset.name!r} has no interactions; "
            "a recommender needs at least one interaction to learn from."
        )
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (dataset.n_users,) or not np.issubdtype(groups.dtype, np.integer):
            raise DataError(
                f"{owner}.fit: groups must be an int array with one label per user "
                f"({dataset.n_users}); got dtype {groups.dtype} and shape {groups.shape}."
            )
        if (groups < -1).any():
            raise DataError(f"{owner}.fit: group labels must be >= 0, or -1 for no group.")
        groups = groups.astype(np.int64)
    user_vectors = _rows_per(owner, "user_vectors", user_vectors, dataset.n_users, "user")
    if centroids is not None:
        centroids = np.asarray(centroids, dtype=np.float64)
        if centroids.ndim != 2 or (user_vectors is not None and centroids.shape[1] != user_vectors.shape[1]):
            raise DataError(f"{owner}.fit: centroids must be (groups x d) like user_vectors; got {centroids.shape}.")
        n_groups = int(groups.max()) + 1 if groups is not None and groups.size else None
        if n_groups is not None and centroids.shape[0] != max(n_groups, 0):
            raise DataError(
                f"{owner}.fit: {centroids.shape[0]} centroids for {max(n_groups, 0)} groups "
                f"(labels 0..{n_groups - 1}); give one centroid per group, in label order."
            )
    item_vectors = _rows_per(owner, "item_vectors", item_vectors, dataset.n_items, "item")
    item_text_vectors = _rows_per(owner, "item_text_vectors", item_text_vectors, dataset.n_items, "item")
    side_vectors = _rows_per(owner, "side_vectors", side_vectors, dataset.n_users, "user")
    if side_vectors is not None and (item_text_vectors is None or side_vectors.shape[1] != item_text_vectors.shape[1]):
        raise DataError(
            f"{owner}.fit: side_vectors must be in the space of item_text_vectors (the same encoder); got width "
            f"{side_vectors.shape[1]} and "
            f"{'no item_text_vectors' if item_text_vectors is None else item_text_vectors.shape[1]}."
        )
    return FitInputs(dataset, groups, user_vectors, centroids, item_vectors, item_text_vectors, side_vectors)


# One binary users x items matrix per dataset, shared by every model fitted on it (as the parts of a composite
# model already share their base's): at 2 x 10^7 interactions each copy holds 0.24 GB and building it peaks at
# 0.4 GB. Models only read it. Held as long as the dataset lives, and no longer.
_SEEN: weakref.WeakKeyDictionary[Dataset, sp.csr_matrix] = weakref.WeakKeyDictionary()


def _seen_matrix(dataset: Dataset) -> sp.csr_matrix:
    seen = _SEEN.get(dataset)
    if seen is None:
        seen = _SEEN[dataset] = dataset.matrix("binary")
    return seen


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
    def _fit(self, inputs: FitInputs) -> None:
        """Learn from ``inputs`` (validated); set fitted state in attributes ending in ``_``."""

    @abstractmethod
    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        """Scores (len(user_rows) x n_items) for known user rows; higher is better."""

    def _score_new(self, query: NewUser) -> np.ndarray:
        """Scores (n_items,) for a user never seen. Default: the fallback (global popularity)."""
        return self.fallback_scores(1)[0]

    def _state(self) -> dict[str, np.ndarray]:
        """The learned arrays of this model itself that ``save`` writes (its parts' are saved by the base)."""
        return {}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what ``_state`` returned (``arrays`` also hold the parts' arrays, under their names)."""
        del arrays  # models without learned arrays of their own have nothing to restore

    def _parts(self) -> dict[str, Recommender]:
        """A composite model's fitted parts by name; the base class saves each under ``name.``."""
        return {}

    def _new_parts(self) -> dict[str, Recommender]:
        """Unfitted parts to restore, by the names ``_parts`` used (called after ``_set_state``)."""
        return {}

    def _set_parts(self, parts: dict[str, Recommender]) -> None:
        """Take the restored parts back (by the names of ``_new_parts``)."""
        del parts  # models without parts have nothing to take

    # -- shared behaviour ----------------------------------------------------------------------------
    def fit(
        self,
        dataset: Dataset,
        *,
        groups: np.ndarray | None = None,
        user_vectors: np.ndarray | None = None,
        centroids: np.ndarray | None = None,
        item_vectors: np.ndarray | None = None,
        item_text_vectors: np.ndarray | None = None,
        side_vectors: np.ndarray | None = None,
    ) -> Self:
        """Learn from ``dataset``; ``groups`` (one int label per user, -1 = none), ``user_vectors`` (one row
        per user), their groups' ``centroids``, ``item_vectors`` (item features, one row per item) and
        ``item_text_vectors`` (the items' texts in the space of ``user_vectors``) and ``side_vectors`` (each
        user's own words and demographics, without their items, in the space of ``item_text_vectors``) are
        optional inputs that the models which read them use."""
        inputs = _checked_inputs(
            type(self).__name__,
            dataset,
            groups,
            user_vectors,
            centroids,
            item_vectors,
            item_text_vectors,
            side_vectors,
        )
        forget_last_calls(self)  # a new user's kept results belong to the previous fit
        self._fit_shared(dataset)
        self._fit(inputs)
        return self

    def _fit_shared(self, dataset: Dataset) -> None:
        """The state every fitted model has (vocabularies, seen items, popularity, tie-break order)."""
        self.user_vocab_ = dataset.user_vocab
        self.item_vocab_ = dataset.item_vocab
        self.n_items_ = dataset.n_items
        self.seen_ = _seen_matrix(dataset)
        self.popularity_ = np.asarray(self.seen_.sum(axis=0)).ravel().astype(np.float64)
        self.tie_break_ = tie_break_noise(dataset.n_items)

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
        hist = history_row(np.unique(item_rows[item_rows >= 0]), self.n_items_)
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

    def score_new(self, query: NewUser) -> np.ndarray:
        """Raw scores (n_items,) for one user never seen; :meth:`recommend_new` ranks them."""
        self._check_fitted()
        return np.asarray(self._score_new(query))

    def score_histories(self, history: sp.csr_matrix) -> np.ndarray:
        """Raw scores (users x n_items) for users never seen, one per row of ``history`` (users x items, binary):
        what :meth:`score_new` gives each history alone, batched where the model can (``_score_histories``)."""
        self._check_fitted()
        history = sp.csr_matrix(history)
        out = np.empty((history.shape[0], self.n_items_))
        taken = np.diff(history.indptr) > 0
        if taken.any():
            out[taken] = self._score_histories(history[taken])
        if not taken.all():  # nothing to go on: what the model says about a user it knows nothing of
            out[~taken] = self._score_new(NewUser(None, None, sp.csr_matrix((1, self.n_items_)), None))
        return out

    def _score_histories(self, history: sp.csr_matrix) -> np.ndarray:
        """Scores for rows of ``history`` that each hold at least one item; models whose score is a product
        with the history override this with one batched product."""
        return np.vstack([self._score_new(NewUser(None, None, history[i], None)) for i in range(history.shape[0])])

    # -- explanations --------------------------------------------------------------------------------
    def contributions(
        self,
        *,
        history: np.ndarray,
        group: int | None = None,
        text: str | None = None,
        vector: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """The model's score of every item for a user who took ``history`` (item rows), is in ``group`` and
        wrote ``text`` (encoded as ``vector``), split into the parts that produced it: part name -> (n_items,)
        scores that add up to the score (``+inf`` where a part alone decides, as for new items). Names:
        "popular", "group" (the group's lift over everyone), "warm", "item_knn", "content", "text", "side",
        "new_item", "model" (a model that does not split its score)."""
        self._check_fitted()
        taken = history_row(np.unique(np.asarray(history, dtype=np.int64)), self.n_items_)
        if vector is not None:
            vector = np.asarray(vector, dtype=np.float64).ravel()
        return self.contributions_of(NewUser(text, vector, taken, group))

    def contributions_of(self, query: NewUser) -> dict[str, np.ndarray]:
        """:meth:`contributions` for a user given as a :class:`NewUser` (composite models ask their parts)."""
        self._check_fitted()
        return {name: np.asarray(part, dtype=np.float64).ravel() for name, part in self._contributions(query).items()}

    def explain(
        self,
        items: Sequence[int] | np.ndarray,
        *,
        history: np.ndarray,
        group: int | None = None,
        text: str | None = None,
        vector: np.ndarray | None = None,
    ) -> list[Reason]:
        """Why each of ``items`` (item rows) was recommended to a user who took ``history`` (item rows), is in
        ``group`` and wrote ``text`` (encoded as ``vector``): the part of the model that lifted the item most
        above what it gives an average item (:meth:`contributions`), and its evidence (the history item the
        model links to it, the group, the words). An item that no part lifts (every part gives all items the
        same, and a fixed order broke the tie) has part None: no reason is made up for it."""
        return self.explain_ranked(items, history=history, group=group, text=text, vector=vector)[0]

    def explain_ranked(
        self,
        items: Sequence[int] | np.ndarray,
        *,
        history: np.ndarray,
        group: int | None = None,
        text: str | None = None,
        vector: np.ndarray | None = None,
    ) -> tuple[list[Reason], int]:
        """:meth:`explain`, and the shortest k from which ``explain(items[:k'])`` equals the first k' reasons
        for every k' >= k (:func:`stable_prefix`), so that a ranked list explained once serves its prefixes."""
        self._check_fitted()
        items = np.asarray(items, dtype=np.int64)
        history = np.asarray(history, dtype=np.int64)
        because = self._because(history, items) if history.size and items.size else np.full(len(items), -1)
        contributions = self.contributions(history=history, group=group, text=text, vector=vector)
        leading, top, largest = _leading_lifts(contributions, items)
        words = self._matched_words(text, items) if text else [() for _ in items]
        reasons = [
            Reason(
                int(b) if part in ITEM_PARTS else -1,
                group if part == "group" and group is not None and group >= 0 else None,
                part,
                w if part == "text" else (),
            )
            for b, part, w in zip(because, leading, words, strict=True)
        ]
        return reasons, stable_prefix(top, largest)

    #: The part a model that does not split its score reports (see :meth:`contributions`).
    part: ClassVar[str] = "model"

    def _contributions(self, query: NewUser) -> dict[str, np.ndarray]:
        """This user's score split into parts (name -> item scores that add up to it); models made of parts,
        or whose score mixes popularity in, override it. Default: the whole score under ``part``, or under
        "popular" for a user the model knows nothing about (it answers with its fallback, popularity)."""
        scores = self.score_new(query)
        if query.n_history == 0 and query.text is None and query.vector is None:
            return {"popular": scores}
        return {self.part: scores}

    def _matched_words(self, text: str, items: np.ndarray) -> list[tuple[str, ...]]:
        """The user's words found in each item's text (models that read item texts override it)."""
        return [() for _ in items]

    def reads_text_vectors(self) -> bool:
        """Whether ``recommend_new(vector=...)`` reads a text vector in the space of the ``item_text_vectors``
        the model was fitted with (a new user's words, encoded like the items' texts)."""
        return False

    def route_of(self, n_history: int) -> str | None:
        """Which route a user with this much history takes, for models that route (None otherwise)."""
        return None

    def group_placer(self) -> GroupPlacer | None:
        """How this model places users in groups (None for models without groups)."""
        return None

    def _because(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """For each item, the history item (row) that contributes most to it, or -1; models with item-item
        weights override it."""
        return np.full(len(items), -1, dtype=np.int64)

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

    def _state_tree(self) -> dict[str, np.ndarray]:
        """This model's arrays and, under each part's name, the part's (recursively)."""
        out = dict(self._state())
        for name, part in self._parts().items():
            out.update({f"{name}.{key}": value for key, value in part._state_tree().items()})
        return out

    def _restore_tree(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what ``_state_tree`` gave (the shared state is already in place)."""
        self._set_state(arrays)
        parts = self._new_parts()
        for name, part in parts.items():
            self._share_fitted_base(part)
            part._restore_tree({k.removeprefix(f"{name}."): v for k, v in arrays.items() if k.startswith(f"{name}.")})
        if parts:
            self._set_parts(parts)

    def save(self, folder: str | Path) -> Path:
        """Write the fitted model to ``folder`` as arrays + JSON (see :mod:`personas.store`)."""
        self._check_fitted()
        arrays = self._shared_state()
        arrays.update({f"model.{name}": value for name, value in self._state_tree().items()})
        meta = {"class": type(self).__name__, "format": SAVED_FORMAT, "config": self.config.model_dump(mode="json")}
        return store.save(folder, arrays, meta)

    @classmethod
    def load(cls, folder: str | Path) -> Recommender:
        """Read a model written by :meth:`save`; it recommends exactly as the saved one did."""
        arrays, meta = store.load(folder)
        return cls.from_arrays(arrays, meta, where=str(folder))

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], *, where: str = "model") -> Recommender:
        """A fitted model from the arrays and meta that :meth:`save` writes (``load`` reads them from a folder;
        the Spark engine builds them from its own tables). ``where`` names the source in errors."""
        name = meta.get("class")
        klass = registry.by_class_name(str(name), Recommender)
        if klass is None:
            raise DataError(f"{where}: saved model class {name!r} is not a personas recommender.")
        if cls is not Recommender and not issubclass(klass, cls):
            raise DataError(f"{where}: holds a {name}, not a {cls.__name__}.")
        if meta.get("format") != SAVED_FORMAT:
            raise DataError(
                f"{where}: this {name} was saved in model format {meta.get('format', 1)!r}; this personas reads "
                f"format {SAVED_FORMAT}. Fit and save the model again (or run the pipeline again) with this version."
            )
        model = klass(klass.Config.model_validate(meta["config"]))
        model._restore_shared(arrays)
        model._restore_tree({k.removeprefix("model."): v for k, v in arrays.items() if k.startswith("model.")})
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


#: The parts that link a recommended item to items the user took (their ``because_of`` is the evidence).
ITEM_PARTS = ("warm", "item_knn")


def leading_parts(contributions: dict[str, np.ndarray], items: np.ndarray) -> list[str | None]:
    """For each item (row), the part that lifts it most above what that part gives an average item; None where
    no part lifts it (each part gives it no more than its average, so only the tie-break put it there).

    A part that gives every item the same score (popularity where every item was taken once, a group that
    likes what everyone likes) lifts none: it cannot be the reason for one item rather than another.
    """
    return _leading_lifts(contributions, items)[0]


def _leading_lifts(
    contributions: dict[str, np.ndarray], items: np.ndarray
) -> tuple[list[str | None], np.ndarray, np.ndarray]:
    """:func:`leading_parts`, with each item's top lift and the largest finite |lift| among its parts (0 when
    none): the rounding floor is 1e-9 times the largest over the items listed, so it depends on the list."""
    items = np.asarray(items, dtype=np.int64)
    if not contributions or not len(items):
        return [None for _ in items], np.zeros(len(items)), np.zeros(len(items))
    names = list(contributions)
    stacked = np.vstack([np.asarray(contributions[name], dtype=np.float64).ravel() for name in names])
    finite = np.isfinite(stacked)
    means = np.array([row[ok].mean() if ok.any() else 0.0 for row, ok in zip(stacked, finite, strict=True)])
    lift = np.where(finite, stacked - means[:, None], stacked)[:, items]  # +inf (a part alone decides) stays
    finite_lift = lift[np.isfinite(lift)]
    # Differences this small are rounding, not a preference (z-scores of a constant row are 0 up to ~1e-16).
    floor = 1e-9 * (float(np.abs(finite_lift).max()) if finite_lift.size else 0.0)
    best = np.argmax(np.where(np.isnan(lift), -np.inf, lift), axis=0)
    top = lift[best, np.arange(len(items))]
    largest = np.where(np.isfinite(lift), np.abs(lift), 0.0).max(axis=0)
    leading = [names[b] if (t > floor and t > 0) else None for b, t in zip(best.tolist(), top.tolist(), strict=True)]
    return leading, top, largest


def stable_prefix(top: np.ndarray, largest: np.ndarray) -> int:
    """The shortest k such that, for every k' >= k, the leading parts of the first k' items alone are the first
    k' of those of the whole list (see :func:`_leading_lifts`): only an item whose top lift lies between the
    rounding floors of a prefix and of the whole list can change. 1 (or 0 for no items) in all but ties with
    rounding noise."""
    n = len(top)
    if n == 0:
        return 0
    floors = 1e-9 * np.maximum.accumulate(np.asarray(largest, dtype=np.float64))
    whole = (top > floors[-1]) & (top > 0)
    # prefix k (1-based) agrees when every item i < k is decided the same against the prefix's floor
    agrees = np.array([bool(np.all(((top[:k] > floors[k - 1]) & (top[:k] > 0)) == whole[:k])) for k in range(1, n + 1)])
    disagreeing = np.flatnonzero(~agrees)
    return int(disagreeing[-1]) + 2 if disagreeing.size else 1


def split_group_part(part: np.ndarray, global_rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A weighted, z-normalised group-popularity part (``w * z(group rates)``) -> (what the group adds over
    everyone, ``w * z(group rates) - w * z(global rates)``; what everyone's taste gives, ``w * z(global
    rates)``). Their sum is the part; a group that likes what everyone likes adds nothing, so a list that is
    global popularity is never credited to a group."""
    part = np.asarray(part, dtype=np.float64).ravel()
    weight = float(np.std(part))  # z-scores have spread 1: the spread of the part is its weight
    everyone = weight * normalise_rows(np.asarray(global_rate, dtype=np.float64).reshape(1, -1))[0]
    return part - everyone, everyone


def blended_parts(parts: dict[str, np.ndarray], weight: float) -> dict[str, np.ndarray]:
    """A model's parts (:meth:`Recommender.contributions`) as they enter a blend of ``weight`` * z-normalised
    scores: each part less its mean, over the spread of their sum. They add up to ``weight * z(score)``; a
    model whose score is the same for every item adds nothing."""
    finite = {name: np.asarray(part, dtype=np.float64).ravel() for name, part in parts.items()}
    if not finite or not weight:
        return {}
    spread = float(np.std(np.sum(np.vstack(list(finite.values())), axis=0)))
    if not spread or not np.isfinite(spread):
        return {}
    return {name: weight * (part - part.mean()) / spread for name, part in finite.items()}


@dataclass(frozen=True)
class Reason:
    """Why an item was recommended.

    ``part``: the part of the model that lifted the item most (see :func:`leading_parts`; None when none did):
    "warm"/"item_knn" (items like ones the user took), "group" (what the user's group likes more than
    everyone), "side" (popular with users who share their details), "popular", "content", "text" (what the
    user wrote means), "new_item" (an item nobody took yet, scored from its features), "peers"
    (taken by users whose own words are like the user's), "model" (a model that does not split its score).
    ``because_of``: the history item that supports it most (an item row; -1 when none or when another part led).
    ``group``: the group whose taste lifted it (None when it did not). ``words``: the user's words found in the
    item's text (for the "text" part).
    """

    because_of: int = -1
    group: int | None = None
    part: str | None = None
    words: tuple[str, ...] = ()


_PART_PHRASES = {
    "warm": "taken by people who took what you took",
    "item_knn": "taken together with what you took",
    "group": "liked more by people like you than by everyone",
    "side": "popular with people who share your details",
    "popular": "popular overall",
    "content": "close in title and genres to what you took",
    "new_item": "new here: close to what you took, by its features",
    "text": "close in meaning to what you wrote",
    "peers": "liked by people who wrote about themselves as you did",
    "model": "ranked high for you by the model",
}
#: What an item that no part lifted reads: nothing in the model points to it more than to others.
NO_REASON = "nothing singles it out: the model has no preference here and keeps a fixed order"


def reason_phrases(reason: Reason, title_of: Callable[[int], str], group_name: Callable[[int], str]) -> list[str]:
    """The words a person reads for a reason: "like <title>", "popular with persona 3 (<name>)",
    "matches 'space', 'aliens'"... (the leading part first); one place for the service, the CLI and the
    dashboard. ``title_of`` should give the item's id where it has no title."""
    phrases = []
    if reason.part is None and reason.because_of < 0 and reason.group is None and not reason.words:
        return [NO_REASON]
    if reason.words:
        phrases.append("matches " + ", ".join(f"'{w}'" for w in reason.words))
    elif reason.because_of < 0 and reason.group is None:
        phrases.append(_PART_PHRASES.get(reason.part or "model", _PART_PHRASES["model"]))
    if reason.because_of >= 0:
        phrases.append(f"like {title_of(reason.because_of)}")
    if reason.group is not None:
        phrases.append(f"popular with persona {reason.group} ({group_name(reason.group)})")
    return phrases


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

    def _fit(self, inputs: FitInputs) -> None:
        pass  # nothing to learn

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        seed = self.config.seed if isinstance(self.config, RandomConfig) else 0
        # One generator per user row: the same user gets the same ranking whatever the batch.
        return np.vstack([np.random.default_rng([seed, int(r)]).random(self.n_items_) for r in user_rows])


class MostPopular(Recommender):
    """Items ranked by how many users interacted with them: the same list for everyone."""

    Config = MostPopularConfig
    part = "popular"

    def _fit(self, inputs: FitInputs) -> None:
        pass  # the base class already counted popularity_

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return np.tile(self.popularity_, (len(user_rows), 1))
