"""Hybrid: a weighted blend of per-user normalised scores of several recommenders (the cross-feature model).

The weights are chosen on a validation split carved from the training data (the last part of each user's
history, by time), by a grid over the simplex, maximising Recall@k there; the components are then refitted
on all the training data. The test split is never looked at.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from personas.config import ComponentConfig, registry
from personas.data import Dataset
from personas.holdout import first_best, recall_of_scores, simplex_grid, temporal_holdout
from personas.recommend._checks import require
from personas.recommend.als import ALS, ALSConfig
from personas.recommend.base import FitInputs, NewUser, Recommender, blended_parts, normalise_rows
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
from personas.recommend.placement import GroupPlacer
from personas.recommend.popular import GroupPopular, GroupPopularConfig

__all__ = ["Hybrid", "HybridConfig"]

#: The kinds a Hybrid can blend, in blending order; each is also the name of its field in HybridConfig.
COMPONENTS: tuple[str, ...] = tuple(registry.kind(part) for part in (GroupPopular, ItemKNN, EASE, ALS, ContentBased))


class HybridConfig(ComponentConfig):
    """Components to blend (None leaves one out) and how their weights are found.

    ``weights`` fixes the weights (no validation split); otherwise a grid with ``grid_step`` is searched.
    """

    kind: ClassVar[str] = "hybrid"

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


class Hybrid(Recommender):
    """Blend of components; ``weights_`` maps component name -> weight, ``validation_recall_`` the score."""

    Config = HybridConfig
    config: HybridConfig

    def _make(self, name: str) -> Recommender:
        return registry.build(getattr(self.config, name), Recommender)

    def _fit(self, inputs: FitInputs) -> None:
        dataset, groups = inputs.dataset, inputs.groups
        names = self.config.component_names()
        self.cold_item_scale_ = self.config.cold_item_scales[0]
        self.cold_item_scale_trials_ = np.zeros((2, 0))  # (scales, validation recall), when tuned
        if self.config.weights is not None:
            weights = np.array([self.config.weights[name] for name in names])
            self.validation_recall_ = float("nan")
        else:
            weights, self.validation_recall_ = self._tune(dataset, groups, names, inputs.item_text_vectors)
        self.names_ = names
        self.weights_ = weights
        self.components_ = {name: self._make(name).fit(dataset, groups=groups) for name in names}
        cold = self.config.cold_items
        self.cold_items_ = (
            FeatureCF(cold).fit(dataset, item_text_vectors=inputs.item_text_vectors)
            if cold is not None and (self.popularity_ == 0).any()
            else None
        )

    def _tune(
        self, dataset: Dataset, groups: np.ndarray | None, names: list[str], item_text_vectors: np.ndarray | None
    ) -> tuple[np.ndarray, float]:
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
        grid = simplex_grid(len(names), self.config.grid_step)
        recalls = []
        for w in grid:
            blend = np.tensordot(w.astype(np.float32), stacked, axes=1)
            blend[masked] = -np.inf
            recalls.append(recall_of_scores(blend, relevant, self.config.k))
        best = first_best(recalls, tolerance=1e-12)
        best_w, best_r = grid[best], recalls[best]
        new_items = np.asarray(taken.sum(axis=0)).ravel() == 0
        self._tune_cold_item_scale(train, new_items, stacked, best_w, seen, held[rows], item_text_vectors)
        return best_w, best_r

    def _tune_cold_item_scale(
        self,
        train: Dataset,
        new_items: np.ndarray,
        stacked: np.ndarray,
        weights: np.ndarray,
        seen: sp.csr_matrix,
        truth: sp.csr_matrix,
        item_text_vectors: np.ndarray | None,
    ) -> None:
        """The new-item fill's scale on the validation split, for the chosen weights (when ``new_items``, those
        nobody took in its training part, are in someone's truth)."""
        cfg = self.config
        if cfg.cold_items is None or not cfg.tune_cold_item_scale or truth[:, new_items].nnz == 0:
            return
        model = FeatureCF(cfg.cold_items).fit(train, item_text_vectors=item_text_vectors)
        blend = np.tensordot(weights.astype(np.float32), stacked, axes=1).astype(np.float64)
        self.cold_item_scale_, self.cold_item_scale_trials_ = choose_fill_scale(
            blend, model, seen, truth, cfg.cold_item_scales, recall_of_scores, cfg.k
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
            self.components_[n].score_rows(user_rows) if w else np.zeros((len(user_rows), self.n_items_))
            for n, w in zip(self.names_, self.weights_, strict=True)
        ]
        return fill_cold_items(self._blend(parts), self.cold_items_, self.seen_[user_rows], scale=self.cold_item_scale_)

    @staticmethod
    def _query_for(model: Recommender, query: NewUser) -> NewUser | None:
        """What ``model`` can read of a new user (None: leave it out of their blend). Content reads vectors
        only in the space of its item vectors (a text vector of another width is dropped, as the router does)
        and text only in its TF-IDF space."""
        if not isinstance(model, ContentBased):
            return query
        if query.vector is not None and query.vector.shape != (model.item_vectors_.shape[1],):
            query = NewUser(query.text, None, query.history, query.group)
        if query.text and not model.uses_text and query.vector is None:
            return None  # text it cannot read: leave content out
        return query

    def _new_parts_scores(self, query: NewUser) -> list[tuple[NewUser | None, np.ndarray]]:
        """Each component's query and raw scores (1 x items) for a new user; zeros for a component without
        weight or with nothing to read."""
        parts: list[tuple[NewUser | None, np.ndarray]] = []
        for name, w in zip(self.names_, self.weights_, strict=True):
            model = self.components_[name]
            own = self._query_for(model, query) if w else None
            scores = model.score_new(own).reshape(1, -1) if own is not None else np.zeros((1, self.n_items_))
            parts.append((own, scores))
        return parts

    def _score_new(self, query: NewUser) -> np.ndarray:
        blend = self._blend([scores for _, scores in self._new_parts_scores(query)])
        return fill_cold_items(blend, self.cold_items_, query.history, scale=self.cold_item_scale_)[0]

    def _contributions(self, query: NewUser) -> dict[str, np.ndarray]:
        # Each component's own parts (GroupPopular: everyone's rates and what the group adds; a component with
        # no history to read: its fallback, popularity), scaled as the blend scales the component.
        out: dict[str, np.ndarray] = {}
        for name, w, (own, _) in zip(self.names_, self.weights_, self._new_parts_scores(query), strict=True):
            if own is None:  # left out of this user's blend
                continue
            for key, piece in blended_parts(self.components_[name].contributions_of(own), float(w)).items():
                out[key] = out.get(key, 0.0) + piece
        if self.cold_items_ is not None and query.n_history:  # items nobody took: FeatureCF speaks for them
            out["new_item"] = np.where(self.popularity_ == 0, np.inf, -np.inf)
        return out

    def group_placer(self) -> GroupPlacer | None:
        part = self.components_.get("group_popular")
        return part.group_placer() if part is not None else None

    def _because(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        part = self.components_.get("item_knn") or self.components_.get("ease")
        return part._because(history, items) if part is not None else super()._because(history, items)

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "names": np.asarray(self.names_, dtype=str),
            "weights": self.weights_,
            "validation_recall": np.array(self.validation_recall_),
            "cold_item_scale": np.array(self.cold_item_scale_, dtype=np.float64),
            "cold_item_scale_trials": self.cold_item_scale_trials_,
        }

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.names_ = arrays["names"].tolist()
        self.weights_ = arrays["weights"]
        self.validation_recall_ = float(arrays["validation_recall"])
        self.cold_item_scale_ = float(arrays["cold_item_scale"])
        self.cold_item_scale_trials_ = arrays["cold_item_scale_trials"]
        self._saved_cold_items = any(k.startswith("cold_items.") for k in arrays)

    def _parts(self) -> dict[str, Recommender]:
        parts = dict(self.components_)
        if self.cold_items_ is not None:
            parts["cold_items"] = self.cold_items_
        return parts

    def _new_parts(self) -> dict[str, Recommender]:
        parts = {name: self._make(name) for name in self.names_}
        if self.config.cold_items is not None and self._saved_cold_items:
            parts["cold_items"] = FeatureCF(self.config.cold_items)
        return parts

    def _set_parts(self, parts: dict[str, Recommender]) -> None:
        cold = parts.pop("cold_items", None)
        self.cold_items_ = cold if isinstance(cold, FeatureCF) else None
        self.components_ = parts
