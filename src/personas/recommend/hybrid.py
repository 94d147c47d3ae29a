"""Hybrid: a weighted blend of per-user normalised scores of several recommenders (the cross-feature model).

The weights are chosen on a validation split carved from the training data (the last part of each user's
history, by time), by a grid over the simplex, maximising Recall@k there; the components are then refitted
on all the training data. The test split is never looked at.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp

from personas.config import ComponentConfig, registry
from personas.data import Dataset
from personas.recommend._checks import require
from personas.recommend.als import ALS, ALSConfig
from personas.recommend.base import NewUser, Recommender, normalise_rows
from personas.recommend.content import ContentBased, ContentConfig
from personas.recommend.ease import EASE, EASEConfig
from personas.recommend.feature_cf import (
    COLD_ITEM_SCALES,
    FeatureCF,
    FeatureCFConfig,
    choose_fill_scale,
    fill_cold_items,
)
from personas.recommend.neighbours import ItemKNN, ItemKNNConfig
from personas.recommend.popular import GroupPopular, GroupPopularConfig

__all__ = ["Hybrid", "HybridConfig", "ndcg_at_k", "recall_at_k", "temporal_holdout"]

#: The kinds a Hybrid can blend, in blending order; each is also the name of its field in HybridConfig.
COMPONENTS: tuple[str, ...] = tuple(registry.kind(part) for part in (GroupPopular, ItemKNN, EASE, ALS, ContentBased))


class HybridConfig(ComponentConfig):
    """Components to blend (None leaves one out) and how their weights are found.

    ``weights`` fixes the weights (no validation split); otherwise a grid with ``grid_step`` is searched.
    """

    group_popular: GroupPopularConfig | None = GroupPopularConfig()
    item_knn: ItemKNNConfig | None = ItemKNNConfig()
    ease: EASEConfig | None = EASEConfig()
    als: ALSConfig | None = None
    content: ContentConfig | None = ContentConfig()
    # Scores items nobody took in training (new items) from their features; None leaves them unscored.
    cold_items: FeatureCFConfig | None = FeatureCFConfig()
    # How far new items may climb a ranking (fill_cold_items' scale); chosen on the validation split with the
    # weights, where items nobody took in its training part are new (the first candidate wins ties).
    cold_item_scales: tuple[float, ...] = COLD_ITEM_SCALES
    tune_cold_item_scale: bool = True
    weights: dict[str, float] | None = None
    grid_step: float = 0.2
    validation_fraction: float = 0.2
    max_validation_users: int = 1000
    k: int = 10
    seed: int = 0

    def model_post_init(self, _context: object) -> None:
        names = self.component_names()
        require(bool(names), "Hybrid", "components", "at least one component config", names)
        require(0 < self.grid_step <= 1, "Hybrid", "grid_step", "a float in (0, 1]", self.grid_step)
        require(
            0 < self.validation_fraction < 1,
            "Hybrid",
            "validation_fraction",
            "a float in (0, 1)",
            self.validation_fraction,
        )
        require(
            self.max_validation_users >= 1, "Hybrid", "max_validation_users", "an int >= 1", self.max_validation_users
        )
        require(self.k >= 1, "Hybrid", "k", "an int >= 1", self.k)
        require(
            bool(self.cold_item_scales) and all(x >= 0 for x in self.cold_item_scales),
            "Hybrid",
            "cold_item_scales",
            "a non-empty tuple of floats >= 0",
            self.cold_item_scales,
        )
        if self.weights is not None:
            require(
                set(self.weights) == set(names) and all(w >= 0 for w in self.weights.values()),
                "Hybrid",
                "weights",
                f"a dict of weights >= 0 with exactly the keys {names}",
                self.weights,
            )

    def component_names(self) -> list[str]:
        return [name for name in COMPONENTS if getattr(self, name) is not None]


def temporal_holdout(
    dataset: Dataset, fraction: float, *, min_interactions: int = 5, round_up: bool = True
) -> np.ndarray:
    """A mask over interactions: False for the last ``fraction`` of each user's history (by time, then
    file order) among users with at least ``min_interactions``; True for everything else. The held count is
    ``fraction`` x the user's count rounded up, or (``round_up=False``, as the warm protocol's split) rounded
    to the nearest and at least one."""
    order = np.lexsort((np.arange(dataset.n_interactions), dataset.timestamps, dataset.user_rows))
    users = dataset.user_rows[order]
    counts = np.bincount(users, minlength=dataset.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(order)) - starts[users]
    held = np.ceil(counts * fraction) if round_up else np.maximum(1, np.rint(counts * fraction))
    n_out = np.where(counts >= min_interactions, held.astype(np.int64), 0)
    keep = np.ones(dataset.n_interactions, dtype=bool)
    keep[order[position >= counts[users] - n_out[users]]] = False
    return keep


def recall_at_k(scores: np.ndarray, relevant: sp.csr_matrix | np.ndarray, k: int) -> float:
    """Mean over rows of |top-k ∩ relevant| / |relevant| (rows without relevant items are skipped)."""
    k = min(k, scores.shape[1])
    dense = sp.csr_matrix(relevant).toarray() > 0 if sp.issparse(relevant) else np.asarray(relevant, dtype=bool)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    hits = np.take_along_axis(dense, top, axis=1).sum(axis=1)
    n_rel = dense.sum(axis=1)
    ok = n_rel > 0
    return float((hits[ok] / n_rel[ok]).mean()) if ok.any() else 0.0


def ndcg_at_k(scores: np.ndarray, relevant: sp.csr_matrix | np.ndarray, k: int) -> float:
    """Mean over rows of NDCG@k with binary relevance (rows without relevant items are skipped); the same
    measure the evaluation tunes on, so that choices made inside ``fit`` aim at it."""
    k = min(k, scores.shape[1])
    dense = sp.csr_matrix(relevant).toarray() > 0 if sp.issparse(relevant) else np.asarray(relevant, dtype=bool)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    hits = np.take_along_axis(dense, np.take_along_axis(top, order, axis=1), axis=1)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    n_rel = dense.sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(n_rel, k) - 1]
    ok = n_rel > 0
    return float(((hits @ discount)[ok] / ideal[ok]).mean()) if ok.any() else 0.0


def simplex_grid(n: int, step: float) -> np.ndarray:
    """Every weight vector of n non-negative multiples of ``step`` that sum to 1."""
    units = round(1 / step)
    rows = [c for c in itertools.product(range(units + 1), repeat=n) if sum(c) == units]
    return np.array(rows, dtype=np.float64) / units


class Hybrid(Recommender):
    """Blend of components; ``weights_`` maps component name -> weight, ``validation_recall_`` the score."""

    Config = HybridConfig
    config: HybridConfig

    def _make(self, name: str) -> Recommender:
        return registry.build(getattr(self.config, name), Recommender)

    def _fit(self, dataset: Dataset, groups: np.ndarray | None) -> None:
        names = self.config.component_names()
        self.cold_item_scale_ = self.config.cold_item_scales[0]
        self.cold_item_scale_trials_ = np.zeros((2, 0))  # (scales, validation recall), when tuned
        if self.config.weights is not None:
            weights = np.array([self.config.weights[name] for name in names])
            self.validation_recall_ = float("nan")
        else:
            weights, self.validation_recall_ = self._tune(dataset, groups, names)
        self.names_ = names
        self.weights_ = weights
        self.components_ = {name: self._make(name).fit(dataset, groups=groups) for name in names}
        cold = self.config.cold_items
        self.cold_items_ = FeatureCF(cold).fit(dataset) if cold is not None and (self.popularity_ == 0).any() else None

    def _tune(self, dataset: Dataset, groups: np.ndarray | None, names: list[str]) -> tuple[np.ndarray, float]:
        keep = temporal_holdout(dataset, self.config.validation_fraction)
        equal = np.full(len(names), 1.0 / len(names))
        if keep.all() or not keep.any() or len(names) == 1:
            return equal, float("nan")
        train = dataset.subset_interactions(keep)
        held = dataset.subset_interactions(~keep).matrix("binary")
        rows = np.flatnonzero(np.diff(held.indptr) > 0)
        if len(rows) > self.config.max_validation_users:
            rng = np.random.default_rng(self.config.seed)
            rows = np.sort(rng.choice(rows, self.config.max_validation_users, replace=False))
        taken = train.matrix("binary")
        seen = taken[rows]
        blocks = []
        for name in names:
            model = self._make(name).fit(train, groups=groups)
            blocks.append(normalise_rows(model.score_rows(rows)))
        relevant = np.asarray(held[rows].todense()) > 0
        masked = seen.nonzero()
        stacked = np.stack(blocks).astype(np.float32)  # (components, users, items); float32 halves the grid's cost
        best_w, best_r = equal, -1.0
        for w in simplex_grid(len(names), self.config.grid_step):
            blend = np.tensordot(w.astype(np.float32), stacked, axes=1)
            blend[masked] = -np.inf
            recall = recall_at_k(blend, relevant, self.config.k)
            if recall > best_r + 1e-12:
                best_w, best_r = w, recall
        new_items = np.asarray(taken.sum(axis=0)).ravel() == 0
        self._tune_cold_item_scale(train, new_items, stacked, best_w, seen, held[rows])
        return best_w, best_r

    def _tune_cold_item_scale(
        self,
        train: Dataset,
        new_items: np.ndarray,
        stacked: np.ndarray,
        weights: np.ndarray,
        seen: sp.csr_matrix,
        truth: sp.csr_matrix,
    ) -> None:
        """The new-item fill's scale on the validation split, for the chosen weights (when ``new_items``, those
        nobody took in its training part, are in someone's truth)."""
        cfg = self.config
        if cfg.cold_items is None or not cfg.tune_cold_item_scale or truth[:, new_items].nnz == 0:
            return
        model = FeatureCF(cfg.cold_items).fit(train)
        blend = np.tensordot(weights.astype(np.float32), stacked, axes=1).astype(np.float64)
        self.cold_item_scale_, self.cold_item_scale_trials_ = choose_fill_scale(
            blend, model, seen, truth, cfg.cold_item_scales, recall_at_k, cfg.k
        )

    @property
    def weights(self) -> dict[str, float]:
        return {name: float(w) for name, w in zip(self.names_, self.weights_, strict=True)}

    def _blend(self, parts: list[np.ndarray]) -> np.ndarray:
        total = np.zeros_like(parts[0])
        for w, part in zip(self.weights_, parts, strict=True):
            if w:
                total += w * normalise_rows(part)
        return total

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        parts = [
            self.components_[n]._score(user_rows) if w else np.zeros((len(user_rows), self.n_items_))
            for n, w in zip(self.names_, self.weights_, strict=True)
        ]
        return fill_cold_items(self._blend(parts), self.cold_items_, self.seen_[user_rows], scale=self.cold_item_scale_)

    def _score_new(self, query: NewUser) -> np.ndarray:
        parts = []
        for name, w in zip(self.names_, self.weights_, strict=True):
            model = self.components_[name]
            if not w:
                parts.append(np.zeros((1, self.n_items_)))
            elif isinstance(model, ContentBased) and query.text and not model.uses_text and query.vector is None:
                parts.append(np.zeros((1, self.n_items_)))  # text it cannot read: leave content out
            else:
                parts.append(np.asarray(model._score_new(query)).reshape(1, -1))
        return fill_cold_items(self._blend(parts), self.cold_items_, query.history, scale=self.cold_item_scale_)[0]

    def _state(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {
            "names": np.asarray(self.names_, dtype=str),
            "weights": self.weights_,
            "validation_recall": np.array(self.validation_recall_),
            "cold_item_scale": np.array(self.cold_item_scale_, dtype=np.float64),
            "cold_item_scale_trials": self.cold_item_scale_trials_,
        }
        for name, model in self.components_.items():
            out.update({f"{name}.{key}": value for key, value in model._state().items()})
        if self.cold_items_ is not None:
            out.update({f"cold_items.{key}": value for key, value in self.cold_items_._state().items()})
        return out

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.names_ = arrays["names"].tolist()
        self.weights_ = arrays["weights"]
        self.validation_recall_ = float(arrays["validation_recall"])
        # absent in models saved before them: those filled at scale 1
        self.cold_item_scale_ = float(arrays.get("cold_item_scale", np.array(1.0)))
        self.cold_item_scale_trials_ = arrays.get("cold_item_scale_trials", np.zeros((2, 0)))
        self.components_ = {}
        for name in self.names_:
            model = self._make(name)
            self._share_fitted_base(model)
            model._set_state({k.removeprefix(f"{name}."): v for k, v in arrays.items() if k.startswith(f"{name}.")})
            self.components_[name] = model
        self.cold_items_ = None
        if self.config.cold_items is not None and any(k.startswith("cold_items.") for k in arrays):
            self.cold_items_ = FeatureCF(self.config.cold_items)
            self._share_fitted_base(self.cold_items_)
            self.cold_items_._set_state(
                {k.removeprefix("cold_items."): v for k, v in arrays.items() if k.startswith("cold_items.")}
            )
