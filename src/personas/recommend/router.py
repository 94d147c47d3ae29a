"""ColdStartRouter: one recommender for every amount of history.

- no history: profile -> side features -> a ridge regression from side features to items (attribute-conditioned
  popularity: what users sharing the age band, gender, occupation, words of their own text took, shrunk toward
  global popularity), plus group-popular on the user's likely groups (the group label given to ``fit``; else
  the nearest group centroid of the user's vector; else a vote of the users with the most similar side text),
  plus content;
- a few interactions (fewer than ``min_history``): a blend of the warm model, item neighbours, popularity,
  content and group-popular, with weights chosen per history size;
- enough history: the warm model (EASE or Hybrid).

Every weight and the switch point are chosen inside ``fit`` on users of the training data whose history is
hidden (cold route: cross-validation folds; few route: users whose first N items are shown and the rest is the
truth; switch point: those users plus a temporal split of the training data), by NDCG@10 -- never on anyone's
test data. Scores of the parts are z-normalised per user before they
are blended.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize

from personas.config import ComponentConfig
from personas.data import Dataset, ProfileConfig, build_profiles
from personas.errors import DataError
from personas.recommend._checks import require
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
from personas.recommend.hybrid import Hybrid, HybridConfig, ndcg_at_k, simplex_grid, temporal_holdout
from personas.recommend.neighbours import ItemKNN, ItemKNNConfig
from personas.recommend.popular import GroupPopular, GroupPopularConfig

__all__ = ["FEW_PARTS", "ColdStartRouter", "ColdStartRouterConfig", "Route", "side_text_with_bands"]

Route = Literal["cold", "few", "warm"]
_TOKEN_PATTERN = r"(?u)\b\w+\b"  # keeps ages such as "24" and one-letter codes
FEW_PARTS = ("warm", "item_knn", "popular", "content", "group")
_AGE = re.compile(r"\b(\d{1,3})[- ]year[- ]old\b")
# MovieLens-1M's age bands: one exact age ("24") is shared by few users, a band by many.
_AGE_BANDS = (18, 25, 35, 45, 50, 56)


def side_text_with_bands(text: str) -> str:
    """The side text plus an age-band token when it states an age ("a 24-year-old ..." -> "age_band_1")."""
    match = _AGE.search(text)
    if match is None:
        return text
    return f"{text} age_band_{int(np.searchsorted(_AGE_BANDS, int(match.group(1)), side='right'))}"


class ColdStartRouterConfig(ComponentConfig):
    """Which warm model, the parts' configs, and how the routes' weights and the switch point are found.

    Few route: ``few_weights`` (warm, item_knn, popular, content, group) are the weights used when there are
    too few users to choose them on; otherwise they are chosen for each history size in ``few_shots`` on
    ``few_validation_users`` training users whose first N items are shown (a grid with ``few_grid_step``).
    ``min_history``: from how many items the warm model alone takes over; None = chosen among ``few_shots``
    (or one past the largest) by the blends' summed gains over the warm model alone: on those simulated users
    for history sizes that fewer than ``switch_min_users`` known users have, and from the first size that
    enough have, on known users of a temporal split of the training data (each user's last
    ``switch_holdout`` of interactions is the truth, users with at least ``switch_min_truth`` such items; up
    to ``switch_validation_users`` users).
    ``switch_gains_`` keeps the evidence (rows: simulated gains, known-user gains, known users).

    Cold route: scores = z(side ridge with ``cold_l2``, or popularity when None) + ``cold_group_weight`` *
    z(group-popular) + ``cold_content_weight`` * z(content); with ``tune_cold`` the three are chosen by
    cross-validation (``cold_folds`` folds of up to ``cold_validation_users`` users) over ``cold_l2s`` (0 =
    popularity), ``cold_group_weights`` and ``cold_content_weights``.
    """

    warm: Literal["ease", "hybrid"] = "ease"
    ease: EASEConfig = EASEConfig()
    hybrid: HybridConfig = HybridConfig()
    item_knn: ItemKNNConfig = ItemKNNConfig(k=100, shrink=10.0)
    group_popular: GroupPopularConfig = GroupPopularConfig()
    content: ContentConfig = ContentConfig()
    # Scores items nobody took in training (new items) from their features, on every route with a history.
    cold_items: FeatureCFConfig | None = FeatureCFConfig()
    min_history: int | None = None
    # On a few-shot validation split of ml-100k (N = 1, 3, 5 shown) item-kNN 2 : popularity 1 : content 1 led
    # at every N (NDCG@10 .517/.489/.490 vs item-kNN alone .418/.463/.472); EASE and groups got no weight.
    few_weights: tuple[float, float, float, float, float] = (0.0, 0.5, 0.25, 0.25, 0.0)
    tune_few: bool = True
    few_shots: tuple[int, ...] = (1, 3, 5, 10, 20)
    few_grid_step: float = 0.25
    few_validation_users: int = 300
    # The switch point: where known users with that much history exist, their next items decide (a temporal
    # split of the training data), not the simulation, whose truth is all the rest of a long history and so
    # rewards popularity. With the simulation alone, on ml-100k, the blend kept every size up to 20, and warm
    # users with 16-20 items lost 13% NDCG to it (0.136 against EASE's 0.157).
    switch_holdout: float = 0.2
    switch_validation_users: int = 2000
    switch_min_users: int = 30
    switch_min_truth: int = 3
    # How far new items (nobody took them in training) may climb a known user's ranking: FeatureCF's scores
    # mapped onto the ranking's scale, times this (fill_cold_items). Chosen on the same temporal split, where
    # items nobody took earlier are new; the first candidate wins ties. On ml-100k's warm split scale 1 cost
    # 2.4% NDCG@10 against EASE (86 of 20,000 test interactions are on new items).
    cold_item_scales: tuple[float, ...] = COLD_ITEM_SCALES
    tune_cold_item_scale: bool = True
    # On the cold-user validation split of ml-100k (demographics only): popularity NDCG@10 .540, side ridge
    # with l2=100 .561 (binary words + age bands), group-popular on side groups .547.
    cold_l2: float | None = 100.0
    cold_group_weight: float = 0.3
    cold_content_weight: float = 0.0
    tune_cold: bool = True
    cold_l2s: tuple[float, ...] = (0.0, 30.0, 100.0, 300.0, 1000.0)
    cold_group_weights: tuple[float, ...] = (0.0, 0.3, 1.0)
    cold_content_weights: tuple[float, ...] = (0.0, 0.1, 0.3)
    cold_folds: int = 5
    cold_validation_users: int = 2000
    max_side_terms: int = 2000
    seed: int = 0
    text_neighbours: int = 100

    def model_post_init(self, _context: object) -> None:
        owner = "ColdStartRouter"
        require(
            self.min_history is None or self.min_history >= 1,
            owner,
            "min_history",
            "None or an int >= 1",
            self.min_history,
        )
        require(0.0 < self.switch_holdout < 1.0, owner, "switch_holdout", "a float in (0, 1)", self.switch_holdout)
        require(self.switch_min_users >= 1, owner, "switch_min_users", "an int >= 1", self.switch_min_users)
        require(self.switch_min_truth >= 1, owner, "switch_min_truth", "an int >= 1", self.switch_min_truth)
        require(
            bool(self.cold_item_scales) and all(x >= 0 for x in self.cold_item_scales),
            owner,
            "cold_item_scales",
            "a non-empty tuple of floats >= 0",
            self.cold_item_scales,
        )
        require(
            self.switch_validation_users >= 10,
            owner,
            "switch_validation_users",
            "an int >= 10",
            self.switch_validation_users,
        )
        require(
            all(w >= 0 for w in self.few_weights) and any(self.few_weights),
            owner,
            "few_weights",
            "five floats >= 0, not all 0",
            self.few_weights,
        )
        require(
            bool(self.few_shots)
            and all(n >= 1 for n in self.few_shots)
            and list(self.few_shots) == sorted(set(self.few_shots)),
            owner,
            "few_shots",
            "increasing ints >= 1",
            self.few_shots,
        )
        require(0 < self.few_grid_step <= 1, owner, "few_grid_step", "a float in (0, 1]", self.few_grid_step)
        require(
            self.few_validation_users >= 10, owner, "few_validation_users", "an int >= 10", self.few_validation_users
        )
        require(self.cold_l2 is None or self.cold_l2 > 0, owner, "cold_l2", "None or a float > 0", self.cold_l2)
        for name in ("cold_group_weight", "cold_content_weight"):
            require(getattr(self, name) >= 0, owner, name, "a float >= 0", getattr(self, name))
        for name in ("cold_l2s", "cold_group_weights", "cold_content_weights"):
            values = getattr(self, name)
            require(bool(values) and all(v >= 0 for v in values), owner, name, "floats >= 0", values)
        require(
            self.cold_validation_users >= 20, owner, "cold_validation_users", "an int >= 20", self.cold_validation_users
        )
        require(self.cold_folds >= 2, owner, "cold_folds", "an int >= 2", self.cold_folds)
        require(self.max_side_terms >= 1, owner, "max_side_terms", "an int >= 1", self.max_side_terms)
        require(self.text_neighbours >= 1, owner, "text_neighbours", "an int >= 1", self.text_neighbours)


def _ridge(features: np.ndarray, targets: sp.csr_matrix, target_mean: np.ndarray, l2: float) -> np.ndarray:
    """Ridge coefficients (features' columns x targets' columns) of centred ``features`` on ``targets`` minus
    ``target_mean``; the dual form when there are fewer rows than features (the same solution, a smaller
    system). The targets stay sparse in the primal form: centred features sum to zero over rows, so
    ``F'(X - 1 mean') = F'X``."""
    n, d = features.shape
    if n < d:
        centred = targets.toarray() - target_mean
        return features.T @ np.linalg.solve(features @ features.T + l2 * np.eye(n), centred)
    return np.linalg.solve(features.T @ features + l2 * np.eye(d), np.asarray((targets.T @ features).T))


def _history_scores(model: Recommender, history: sp.csr_matrix) -> np.ndarray:
    """What ``model._score_new`` gives each row of ``history`` (users x items), batched where the model's
    score is a product with the history."""
    if isinstance(model, EASE):
        return np.asarray(history @ model.weights_, dtype=np.float64)
    if isinstance(model, ItemKNN):
        return np.asarray((history @ model.similarity_).todense())
    if isinstance(model, ContentBased):
        return model._profile_scores(history @ model.item_vectors_)
    if isinstance(model, GroupPopular):
        return model.group_score_block(np.array([model.group_of_history(history[i]) for i in range(history.shape[0])]))
    return np.vstack([model._score_new(NewUser(None, None, history[i], None)) for i in range(history.shape[0])])


def _few_part_scores(parts: dict[str, Recommender], shown: sp.csr_matrix) -> dict[str, np.ndarray]:
    """Each few-route part's z-normalised scores for the rows of ``shown`` (popularity from the group part)."""
    scores = {name: normalise_rows(_history_scores(parts[name], shown)) for name in FEW_PARTS if name != "popular"}
    popular = normalise_rows(parts["group"].popularity_.reshape(1, -1))[0]
    scores["popular"] = np.tile(popular, (shown.shape[0], 1))
    return scores


class _KnownUsers(NamedTuple):
    """A temporal split of the training data for choices checked on known users (see _known_user_split)."""

    before: Dataset
    history: sp.csr_matrix  # users x items, the earlier interactions
    later: sp.csr_matrix  # users x items, the truth
    users: np.ndarray
    parts: dict[str, Recommender]


def _switch_point(shots: np.ndarray, gains: np.ndarray) -> int:
    """The history size from which the warm model alone is used: the one of ``shots`` (or one past the last)
    below which the blends' summed validation gains over the warm model alone are largest (smallest wins ties).
    """
    totals = np.concatenate([[0.0], np.cumsum(gains)])  # totals[i]: blends for the rows below shots[i]
    best = int(np.argmax(totals > totals.max() - 1e-9))
    return int(shots[best]) if best < len(shots) else int(shots[-1]) + 1


class ColdStartRouter(Recommender):
    """Routes each user by the size of their history; see the module docstring.

    ``fit(dataset, groups=None, *, user_vectors=None, centroids=None, item_vectors=None)``: vectors and
    group centroids come as arrays (the pipeline encodes text; recommend never does).
    """

    Config = ColdStartRouterConfig
    config: ColdStartRouterConfig
    _side_counter: CountVectorizer | None = None  # a cache for _side_counts, not state
    _side_counter_terms: np.ndarray | None = None

    def fit(
        self,
        dataset: Dataset,
        *,
        groups: np.ndarray | None = None,
        user_vectors: np.ndarray | None = None,
        centroids: np.ndarray | None = None,
        item_vectors: np.ndarray | None = None,
    ) -> ColdStartRouter:
        if user_vectors is not None:
            user_vectors = np.asarray(user_vectors, dtype=np.float64)
            if user_vectors.ndim != 2 or user_vectors.shape[0] != dataset.n_users:
                raise DataError(
                    f"ColdStartRouter.fit: user_vectors must have one row per user ({dataset.n_users}); "
                    f"got shape {user_vectors.shape}."
                )
        if centroids is not None:
            centroids = np.asarray(centroids, dtype=np.float64)
            if centroids.ndim != 2 or (user_vectors is not None and centroids.shape[1] != user_vectors.shape[1]):
                raise DataError(
                    f"ColdStartRouter.fit: centroids must be (groups x d) like user_vectors; got {centroids.shape}."
                )
        self._inputs = (user_vectors, centroids, item_vectors)
        try:
            return super().fit(dataset, groups=groups)
        finally:
            del self._inputs

    def _make_warm(self) -> Recommender:
        cfg = self.config
        return EASE(cfg.ease) if cfg.warm == "ease" else Hybrid(cfg.hybrid)

    def _fit(self, dataset: Dataset, groups: np.ndarray | None) -> None:
        user_vectors, centroids, item_vectors = self._inputs
        cfg = self.config
        self.warm_: Recommender = self._make_warm().fit(dataset, groups=groups)
        self.item_knn_ = ItemKNN(cfg.item_knn).fit(dataset, groups=groups)
        self.group_popular_ = GroupPopular(cfg.group_popular).fit(dataset, groups=groups)
        self.content_ = ContentBased(cfg.content).fit(dataset, groups=groups, item_vectors=item_vectors)
        self.cold_items_ = (
            FeatureCF(cfg.cold_items).fit(dataset, item_vectors=item_vectors)
            if cfg.cold_items is not None and (self.popularity_ == 0).any()
            else None
        )
        self.user_vectors_ = np.zeros((0, 0)) if user_vectors is None else user_vectors
        self.centroids_ = np.zeros((0, 0)) if centroids is None else normalize(centroids)
        self._fit_side_text(dataset)
        self.cold_weights_ = np.array(self._tune_cold(dataset, groups), dtype=np.float64)
        l2 = float(self.cold_weights_[0])
        self._fit_side_ridge(np.flatnonzero(np.diff(self.seen_.indptr) > 0), l2)
        # the known-user split serves the switch point (tuned when not fixed) and the new-item fill's scale
        # (tuned when there are new items); it costs a refit of the parts, so only when one of them needs it
        switch = cfg.tune_few and cfg.min_history is None
        scale = cfg.tune_cold_item_scale and self.cold_items_ is not None
        self._known = self._known_user_split(dataset, groups) if switch or scale else None
        self.cold_item_scale_trials_ = np.zeros((2, 0))  # (scales, validation NDCG@10), when tuned
        self.few_shots_, self.few_table_, self.min_history_ = self._tune_few(dataset, groups)
        self.cold_item_scale_ = self._tune_cold_item_scale(self._known, item_vectors)
        del self._side_binary, self._known

    # -- side information ------------------------------------------------------------------------------
    def _fit_side_text(self, dataset: Dataset) -> None:
        """Words of what is known about users without their behaviour (own text, demographics, age bands):
        TF-IDF vectors for the group vote, binary ones for the side ridge."""
        texts = [
            side_text_with_bands(t) for t in build_profiles(dataset, ProfileConfig(parts=("text", "demographics")))
        ]
        counter = CountVectorizer(
            token_pattern=_TOKEN_PATTERN, dtype=np.float64, max_features=self.config.max_side_terms
        )
        try:
            counts = counter.fit_transform(texts)
            self.side_terms_ = np.asarray(counter.get_feature_names_out(), dtype=str)
        except ValueError:  # nobody has any side text
            counts = sp.csr_matrix((dataset.n_users, 0))
            self.side_terms_ = np.array([], dtype=str)
        df = np.asarray((counts > 0).sum(axis=0)).ravel()
        self.side_idf_ = np.log((1.0 + dataset.n_users) / (1.0 + df)) + 1.0
        self.side_vectors_ = self._tfidf(counts)
        self.side_texts_ = np.asarray(texts, dtype=str)
        self._side_binary = sp.csr_matrix(counts > 0, dtype=np.float64)  # for fit only

    def _tfidf(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        weighted = sp.csr_matrix(counts @ sp.diags(self.side_idf_))
        return normalize(weighted).tocsr() if weighted.shape[1] else weighted

    def _side_counts(self, texts: list[str]) -> sp.csr_matrix:
        """Word counts (len(texts) x side terms) of side texts, age bands added."""
        if len(self.side_terms_) == 0:
            return sp.csr_matrix((len(texts), 0))
        if self._side_counter is None or self._side_counter_terms is not self.side_terms_:
            vocabulary = {term: i for i, term in enumerate(self.side_terms_.tolist())}
            self._side_counter = CountVectorizer(token_pattern=_TOKEN_PATTERN, vocabulary=vocabulary, dtype=np.float64)
            self._side_counter_terms = self.side_terms_
        return sp.csr_matrix(self._side_counter.transform([side_text_with_bands(t) for t in texts]))

    def _side_vector(self, text: str) -> sp.csr_matrix:
        return self._tfidf(self._side_counts([text]))

    def _fit_side_ridge(self, rows: np.ndarray, l2: float) -> None:
        """Item scores from binary side words: ``item_mean + (b - side_mean) @ side_weights`` (ridge on the
        users ``rows``); l2 = 0 keeps global popularity (no side weights)."""
        x = self.seen_[rows]
        self.item_mean_ = np.asarray(x.mean(axis=0)).ravel() if len(rows) else np.zeros(self.n_items_)
        features = self._side_binary[rows].toarray()
        self.side_mean_ = features.mean(axis=0) if len(rows) else np.zeros(features.shape[1])
        if l2 <= 0 or features.shape[1] == 0 or len(rows) == 0:
            self.side_weights_ = np.zeros((features.shape[1], self.n_items_))
        else:
            self.side_weights_ = _ridge(features - self.side_mean_, x, self.item_mean_, l2)

    def side_scores(self, binary: sp.csr_matrix) -> np.ndarray:
        """Attribute-conditioned popularity (rows of binary side words -> item scores)."""
        return self.item_mean_ + (np.asarray(binary.todense()) - self.side_mean_) @ self.side_weights_

    # -- choosing the cold route's weights -------------------------------------------------------------
    def _tune_cold(self, dataset: Dataset, groups: np.ndarray | None) -> tuple[float, float, float]:
        """(side ridge l2 (0 = popularity), group weight, content weight) with the best cross-validated NDCG@10.

        The users with history are split into ``cold_folds`` seeded folds; each fold in turn becomes cold: its
        interactions are hidden from a ridge and a GroupPopular fitted on the other folds, its users are placed
        by side text (or vector), and their hidden items are the truth. Several folds because one fold of
        ml-100k (~150 users) moved the choice with the seed. With fewer than 20 users with history the
        configured values are kept; they are also the first candidates, so they win ties.
        """
        cfg = self.config
        first = (cfg.cold_l2 or 0.0, cfg.cold_group_weight, cfg.cold_content_weight)
        l2s = list(dict.fromkeys((first[0], *cfg.cold_l2s)))
        mixes = list(
            dict.fromkeys(
                [(first[1], first[2])] + [(g, c) for g in cfg.cold_group_weights for c in cfg.cold_content_weights]
            )
        )
        active = np.flatnonzero(np.diff(self.seen_.indptr) > 0)
        if not cfg.tune_cold or len(active) < 20:
            return first
        rng = np.random.default_rng(cfg.seed)
        if len(active) > cfg.cold_validation_users:  # enough for the choice; full ranking of each is the cost
            active = rng.choice(active, cfg.cold_validation_users, replace=False)
        folds = np.array_split(rng.permutation(active), cfg.cold_folds)
        labels_all = groups if groups is not None else np.full(dataset.n_users, -1, dtype=np.int64)
        totals: dict[tuple[float, float, float], float] = {}
        for held in folds:
            held = np.sort(held)
            rest = np.setdiff1d(active, held)
            labels = labels_all.copy()
            labels[held] = -1
            gp = GroupPopular(cfg.group_popular).fit(
                dataset.subset_interactions(~np.isin(dataset.user_rows, held)), groups=labels
            )
            eligible = (np.diff(gp.seen_.indptr) > 0) & (labels >= 0)
            weights = self._placements(held, labels, eligible)
            placed = np.asarray(weights.any(axis=1), dtype=bool)
            group_part = normalise_rows(np.where(placed[:, None], weights @ gp.group_scores_, gp.global_rate_))
            content = normalise_rows(self._cold_content_rows(held))
            truth = self.seen_[held]
            for l2 in l2s:
                self._fit_side_ridge(rest, l2)
                base = normalise_rows(self.side_scores(self._side_binary[held]))
                for g, c in mixes:
                    score = ndcg_at_k(base + g * group_part + c * content, truth, 10)
                    totals[(l2, g, c)] = totals.get((l2, g, c), 0.0) + len(held) * score
        best = max(totals.values())
        return next(key for key, value in totals.items() if value > best - 1e-9)  # first of the best

    # -- choosing the few route's weights and the switch point ---------------------------------------
    def _tune_few(self, dataset: Dataset, groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
        """Weights of the few route per history size (rows of ``few_table_`` for ``few_shots_``) and the
        history size from which the warm model alone takes over.

        Up to ``few_validation_users`` users with at least N + 5 items are hidden from refitted parts; for each
        N of ``few_shots`` (below a fixed ``min_history``) their first N items in time are shown and the rest
        is the truth; the weight vector with the best NDCG@10 is kept (the configured one is tried first and
        wins ties).
        """
        cfg = self.config
        # rows: gains on simulated new users, gains on known users, known users; a column per tuned N
        self.switch_gains_ = np.zeros((3, 0))
        shots = [n for n in cfg.few_shots if cfg.min_history is None or n < cfg.min_history]
        default = np.array(cfg.few_weights, dtype=np.float64)
        fixed_min = cfg.min_history if cfg.min_history is not None else 5
        counts = np.diff(self.seen_.indptr)
        candidates = np.flatnonzero(counts >= (shots[0] if shots else 1) + 5)
        if not cfg.tune_few or not shots or len(candidates) < 10:
            return np.array([1], dtype=np.int64), default.reshape(1, -1), fixed_min
        rng = np.random.default_rng(cfg.seed + 1)
        held = np.sort(
            rng.choice(candidates, min(cfg.few_validation_users, max(10, len(candidates) // 5)), replace=False)
        )
        rest = dataset.subset_interactions(~np.isin(dataset.user_rows, held))
        labels = None if groups is None else np.where(np.isin(np.arange(dataset.n_users), held), -1, groups)
        parts = self._refit_parts(rest, labels)
        order = np.lexsort((np.arange(dataset.n_interactions), dataset.timestamps, dataset.user_rows))
        grid = np.vstack([default / default.sum(), simplex_grid(len(FEW_PARTS), cfg.few_grid_step)])
        table, used, gains = [], [], []
        warm_alone = int(np.flatnonzero(grid[:, 0] == 1.0)[0])
        for n in shots:
            users = held[counts[held] >= n + 5]
            if len(users) < 10:
                break
            shown, truth = self._shown_and_rest(dataset, order, users, n)
            part_scores = _few_part_scores(parts, shown)
            stacked = np.stack([part_scores[name] for name in FEW_PARTS]).astype(np.float32)
            masked = shown.nonzero()
            scores = []
            for w in grid:
                blend = np.tensordot(w.astype(np.float32), stacked, axes=1)
                blend[masked] = -np.inf
                scores.append(ndcg_at_k(blend, truth, 10))
            best = int(np.argmax(np.asarray(scores) > max(scores) - 1e-9))
            table.append(grid[best])
            used.append(n)
            gains.append(len(users) * (scores[best] - scores[warm_alone]))
        if not table:
            return np.array([1], dtype=np.int64), default.reshape(1, -1), fixed_min
        table_arr = np.vstack(table)
        if cfg.min_history is not None:
            return np.asarray(used, dtype=np.int64), table_arr, int(cfg.min_history)
        shots_arr = np.asarray(used, dtype=np.int64)
        known, known_users = self._known_user_gains(self._known, shots_arr, table_arr)
        # Below the first history size that enough known users have, only the simulation speaks (nobody in the
        # data has so little history); from there on the known users' next items decide.
        enough = np.flatnonzero(known_users >= cfg.switch_min_users)
        first = int(enough[0]) if len(enough) else len(shots_arr)
        self.switch_gains_ = np.vstack([np.asarray(gains), known, known_users])
        chosen = np.concatenate([np.asarray(gains)[:first], known[first:]])
        return shots_arr, table_arr, _switch_point(shots_arr, chosen)

    def _known_user_split(self, dataset: Dataset, groups: np.ndarray | None) -> _KnownUsers | None:
        """A per-user temporal split of the training data (the warm protocol's split): each user's last
        ``switch_holdout`` of interactions in time is the truth, for up to ``switch_validation_users`` users
        with at least ``switch_min_truth`` such items (one or two make NDCG@10 a coin toss, and users that short
        are the few-shot simulation's population). The warm model, item-kNN and group-popular are refitted on
        the earlier interactions, where these users' groups are hidden (they are placed by their earlier
        history, as a new user would be). None when fewer than 10 users qualify."""
        cfg = self.config
        before = dataset.subset_interactions(
            temporal_holdout(dataset, cfg.switch_holdout, min_interactions=2, round_up=False)
        )
        history = before.matrix("binary")
        later = sp.csr_matrix(self.seen_ - self.seen_.multiply(history > 0))
        later.eliminate_zeros()
        users = np.flatnonzero((np.diff(history.indptr) >= 1) & (np.diff(later.indptr) >= cfg.switch_min_truth))
        if len(users) < 10:
            return None
        if len(users) > cfg.switch_validation_users:
            rng = np.random.default_rng(cfg.seed + 2)
            users = np.sort(rng.choice(users, cfg.switch_validation_users, replace=False))
        labels = None if groups is None else np.where(np.isin(np.arange(dataset.n_users), users), -1, groups)
        return _KnownUsers(before, history, later, users, self._refit_parts(before, labels))

    def _refit_parts(self, data: Dataset, labels: np.ndarray | None) -> dict[str, Recommender]:
        """The few route's collaborative parts fitted on ``data`` (content reads item vectors only)."""
        cfg = self.config
        return {
            "warm": self._make_warm().fit(data, groups=labels),
            "item_knn": ItemKNN(cfg.item_knn).fit(data, groups=labels),
            "content": self.content_,  # item vectors only: no interaction of anyone is in them
            "group": GroupPopular(cfg.group_popular).fit(data, groups=labels),
        }

    def _known_user_gains(
        self, known: _KnownUsers | None, shots: np.ndarray, table: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per row of ``table``: how much more NDCG@10 (summed over users) its blend gives the known users of
        ``known`` than the warm model alone, and how many users that row had. Users with ``h`` earlier items,
        ``1 <= h <= shots[-1]``, are scored with the weights the router would use for ``h`` (those of the
        largest tuned N <= h): the population the few-shot simulation does not see, users with some history
        whose next items, not all the rest, are the truth."""
        out, n_users = np.zeros(len(shots)), np.zeros(len(shots))
        if known is None:
            return out, n_users
        counts = np.diff(known.history.indptr)
        users = known.users[counts[known.users] <= shots[-1]]
        rows = np.maximum(np.searchsorted(shots, counts[users], side="right") - 1, 0)
        for row in np.unique(rows).tolist():
            members = users[rows == row]
            scores = _few_part_scores(known.parts, known.history[members])
            blend = sum(w * scores[name] for name, w in zip(FEW_PARTS, table[row], strict=True))
            warm = scores["warm"]
            masked = known.history[members].nonzero()
            blend[masked] = warm[masked] = -np.inf
            truth = known.later[members]
            out[row] = len(members) * (ndcg_at_k(blend, truth, 10) - ndcg_at_k(warm, truth, 10))
            n_users[row] = len(members)
        return out, n_users

    def _tune_cold_item_scale(self, known: _KnownUsers | None, item_vectors: np.ndarray | None) -> float:
        """How strongly items nobody took in training enter known users' rankings (see ``fill_cold_items``):
        the candidate of ``cold_item_scales`` with the best NDCG@10 on ``known``'s users, routed as the
        router routes them, where FeatureCF fitted on the earlier interactions scores the items nobody took
        there. The first candidate when that split has no such item in anyone's truth."""
        cfg = self.config
        default = cfg.cold_item_scales[0]
        if self.cold_items_ is None or known is None or not cfg.tune_cold_item_scale or cfg.cold_items is None:
            return default
        new_items = np.asarray(known.history.sum(axis=0)).ravel() == 0
        truth = known.later[known.users]
        if not new_items.any() or truth[:, new_items].nnz == 0:
            return default
        model = FeatureCF(cfg.cold_items).fit(known.before, item_vectors=item_vectors)
        counts = np.diff(known.history.indptr)[known.users]
        history = known.history[known.users]
        scores = np.empty((len(known.users), self.n_items_))
        warm = counts >= self.min_history_
        if warm.any():  # the warm route needs the warm part only
            scores[warm] = normalise_rows(_history_scores(known.parts["warm"], history[warm]))
        for n in np.unique(counts[~warm]).tolist():
            members = counts == n
            parts = _few_part_scores(known.parts, history[members])
            scores[members] = sum(w * parts[name] for name, w in self.few_weights_for(n).items())
        scale, self.cold_item_scale_trials_ = choose_fill_scale(
            scores, model, history, truth, cfg.cold_item_scales, ndcg_at_k
        )
        return scale

    def _shown_and_rest(
        self, dataset: Dataset, order: np.ndarray, users: np.ndarray, n: int
    ) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """Binary (users x items) matrices of each user's first n items in time and of the rest."""
        starts = np.searchsorted(dataset.user_rows[order], users)
        shown_rows, shown_cols, rest_rows, rest_cols = [], [], [], []
        ends = np.searchsorted(dataset.user_rows[order], users, side="right")
        for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
            items = dataset.item_rows[order[a:b]]
            first = np.unique(items[:n])
            later = np.setdiff1d(items[n:], first)
            shown_rows += [i] * len(first)
            shown_cols += first.tolist()
            rest_rows += [i] * len(later)
            rest_cols += later.tolist()
        shape = (len(users), self.n_items_)
        shown = sp.csr_matrix((np.ones(len(shown_rows)), (shown_rows, shown_cols)), shape=shape)
        rest = sp.csr_matrix((np.ones(len(rest_rows)), (rest_rows, rest_cols)), shape=shape)
        return shown, rest

    # -- routing -------------------------------------------------------------------------------------
    def route_of(self, n_history: int) -> Route:
        if n_history == 0:
            return "cold"
        return "few" if n_history < self.min_history_ else "warm"

    def few_weights_for(self, n_history: int) -> dict[str, float]:
        """The few route's weights for a history of this size (those of the largest tuned N <= it)."""
        row = max(int(np.searchsorted(self.few_shots_, n_history, side="right")) - 1, 0)
        return dict(zip(FEW_PARTS, self.few_table_[row].tolist(), strict=True))

    def group_weights(self, *, side: sp.csr_matrix | None = None, vector: np.ndarray | None = None) -> np.ndarray:
        """How likely someone with no history belongs to each group (sums to 1, or all 0 when unknown).

        With a vector and centroids: the nearest centroid. Otherwise a similarity-weighted vote of the
        ``text_neighbours`` users with history whose side text (own text, demographics) is most like ``side``.
        """
        n_groups = len(self.group_popular_.group_scores_)
        out = np.zeros(n_groups)
        if n_groups == 0:
            return out
        if vector is not None and self.centroids_.size and vector.shape == (self.centroids_.shape[1],):
            out[int(np.argmax(self.centroids_ @ vector))] = 1.0
            return out
        labels = self.group_popular_.labels_
        eligible = (np.diff(self.seen_.indptr) > 0) & (labels >= 0)
        return self._vote(side, labels, eligible, n_groups)

    def _vote(self, side: sp.csr_matrix | None, labels: np.ndarray, eligible: np.ndarray, n_groups: int) -> np.ndarray:
        """Similarity-weighted group vote of the eligible users nearest to ``side`` (all 0 if none)."""
        if side is None or side.shape[1] != self.side_vectors_.shape[1]:
            return np.zeros(n_groups)
        return self._votes(sp.csr_matrix(side), labels, eligible, n_groups)[0]

    def _votes(self, sides: sp.csr_matrix, labels: np.ndarray, eligible: np.ndarray, n_groups: int) -> np.ndarray:
        """``_vote`` for many side vectors at once (rows of ``sides``), in chunks to bound memory."""
        out = np.zeros((sides.shape[0], n_groups))
        if not eligible.any() or sides.nnz == 0:
            return out
        k = min(self.config.text_neighbours, int(eligible.sum()))
        for start in range(0, sides.shape[0], 256):
            sims = np.asarray((sides[start : start + 256] @ self.side_vectors_.T).todense())
            sims[:, ~eligible] = -np.inf
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            weight = np.take_along_axis(sims, top, axis=1)
            weight = np.where(weight > 0, weight, 0.0)  # no shared words: no vote
            for i in range(len(top)):
                votes = np.bincount(labels[top[i]], weights=weight[i], minlength=n_groups)
                if votes.sum() > 0:
                    out[start + i] = votes / votes.sum()
        return out

    def group_of(self, *, side: sp.csr_matrix | None = None, vector: np.ndarray | None = None) -> int:
        """The most likely group of someone with no history; -1 when nothing points to one."""
        weights = self.group_weights(side=side, vector=vector)
        return int(np.argmax(weights)) if weights.any() else -1

    def group_of_text(self, text: str) -> int:
        """The most likely group of someone with no history, from their profile text; -1 if none."""
        return self.group_of(side=self._side_vector(text))

    def _cold(self, side_binary: sp.csr_matrix, weights: np.ndarray, content: np.ndarray | None) -> np.ndarray:
        """Side ridge (attribute-conditioned popularity) + group-popular on the likely groups + content."""
        gp = self.group_popular_
        _, group_weight, content_weight = self.cold_weights_
        if side_binary.nnz == 0 and weights.any():
            # No side words: the ridge would only repeat global popularity, which group-popular already
            # shrinks toward; the group (given, or from a vector) is all there is.
            scores = normalise_rows((weights @ gp.group_scores_).reshape(1, -1))[0]
        else:
            scores = normalise_rows(self.side_scores(side_binary).reshape(1, -1))[0]
            if group_weight:
                group = weights @ gp.group_scores_ if weights.any() else gp.global_rate_
                scores = scores + group_weight * normalise_rows(group.reshape(1, -1))[0]
        if content is not None and content_weight:
            scores = scores + content_weight * normalise_rows(content.reshape(1, -1))[0]
        return scores

    def _one_hot(self, group: int) -> np.ndarray:
        out = np.zeros(len(self.group_popular_.group_scores_))
        if 0 <= group < len(out):
            out[group] = 1.0
        return out

    def _few(self, parts: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
        total = np.zeros_like(parts["item_knn"])
        for name, weight in weights.items():
            if weight:
                total += weight * normalise_rows(parts[name])
        return total

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        counts = np.diff(self.seen_.indptr)[user_rows]
        out = np.empty((len(user_rows), self.n_items_))
        warm = counts >= self.min_history_
        if warm.any():
            out[warm] = self.warm_._score(user_rows[warm])
        for n in np.unique(counts[(counts > 0) & ~warm]).tolist():
            few = counts == n
            rows = user_rows[few]
            labels = self.group_popular_.labels_[rows].copy()
            for i, row in enumerate(rows):
                if labels[i] < 0:
                    labels[i] = self.group_popular_.group_of_history(self.seen_[row])
            weights = self.few_weights_for(n)
            parts = {
                "warm": self.warm_._score(rows) if weights["warm"] else np.zeros((len(rows), self.n_items_)),
                "item_knn": self.item_knn_._score(rows),
                "popular": np.tile(self.popularity_, (len(rows), 1)),
                "content": self.content_._score(rows),
                "group": self.group_popular_.group_score_block(labels),
            }
            out[few] = self._few(parts, weights)
        for i in np.flatnonzero(counts == 0).tolist():
            out[i] = self._score_cold_row(int(user_rows[i]))
        return fill_cold_items(out, self.cold_items_, self.seen_[user_rows], scale=self.cold_item_scale_)

    def _placements(self, rows: np.ndarray, labels: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        """``_placement`` for many users; side-text votes in one batch."""
        n_groups = len(self.group_popular_.group_scores_)
        placed_by_vector = self.user_vectors_.size > 0 and self.centroids_.size > 0
        by_text = (labels[rows] < 0) if not placed_by_vector else np.zeros(len(rows), dtype=bool)
        out = np.zeros((len(rows), n_groups))
        if by_text.any():
            out[by_text] = self._votes(self.side_vectors_[rows[by_text]], labels, eligible, n_groups)
        for i in np.flatnonzero(~by_text).tolist():
            out[i] = self._placement(int(rows[i]), labels, eligible)
        return out

    def _placement(self, row: int, labels: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        """Group weights of a known user without history: their label, else vector, else side-text vote."""
        n_groups = len(self.group_popular_.group_scores_)
        if labels[row] >= 0:
            return self._one_hot(int(labels[row]))
        vector = self.user_vectors_[row] if self.user_vectors_.size else None
        if vector is not None and self.centroids_.size:
            return self.group_weights(vector=vector)
        return self._vote(self.side_vectors_[row], labels, eligible, n_groups)

    def _cold_content_rows(self, rows: np.ndarray) -> np.ndarray:
        """``_cold_content`` for many users, text ones in one batch."""
        out = np.zeros((len(rows), self.n_items_))
        if self.content_.uses_text:
            texts = [str(self.side_texts_[r]) for r in rows]
            has = np.array([bool(t) for t in texts], dtype=bool)
            if has.any():
                out[has] = self.content_.text_scores([t for t in texts if t])
            return out
        for i, row in enumerate(rows.tolist()):
            out[i] = self._cold_content(row)
        return out

    def _cold_content(self, row: int) -> np.ndarray:
        """Content scores from what is known about a user besides behaviour (zeros if nothing)."""
        empty = sp.csr_matrix((1, self.n_items_))
        vector = self.user_vectors_[row] if self.user_vectors_.size else None
        if self.content_.uses_text and self.side_texts_[row]:
            return self.content_.text_scores([str(self.side_texts_[row])])[0]
        if (
            vector is not None
            and not self.content_.uses_text
            and vector.shape == (self.content_.item_vectors_.shape[1],)
        ):
            return np.asarray(self.content_._score_new(NewUser(None, vector, empty, None)))
        return np.zeros(self.n_items_)

    def _score_cold_row(self, row: int) -> np.ndarray:
        labels = self.group_popular_.labels_
        eligible = (np.diff(self.seen_.indptr) > 0) & (labels >= 0)
        content = self._cold_content(row)
        binary = sp.csr_matrix(self._side_counts([str(self.side_texts_[row])]) > 0, dtype=np.float64)
        return self._cold(binary, self._placement(row, labels, eligible), content if content.any() else None)

    def _score_new(self, query: NewUser) -> np.ndarray:
        scores = self._route_new(query).reshape(1, -1)
        return fill_cold_items(scores, self.cold_items_, query.history, scale=self.cold_item_scale_)[0]

    def _route_new(self, query: NewUser) -> np.ndarray:
        route = self.route_of(query.n_history)
        if route == "warm":
            return np.asarray(self.warm_._score_new(query))
        # Content reads text only in its TF-IDF space and vectors only in the space of its item vectors.
        vector_fits = (
            query.vector is not None
            and not self.content_.uses_text
            and query.vector.shape == (self.content_.item_vectors_.shape[1],)
        )
        content_query = NewUser(
            query.text if self.content_.uses_text else None,
            query.vector if vector_fits else None,
            query.history,
            None,
        )
        content = (
            np.asarray(self.content_._score_new(content_query))
            if content_query.text or content_query.vector is not None or query.n_history
            else None
        )
        if route == "few":
            group = query.group if query.group is not None else self.group_popular_.group_of_history(query.history)
            assert content is not None
            weights = self.few_weights_for(query.n_history)
            parts = {
                "warm": np.asarray(self.warm_._score_new(query)).reshape(1, -1),
                "item_knn": np.asarray(self.item_knn_._score_new(query)).reshape(1, -1),
                "popular": self.popularity_.reshape(1, -1),
                "content": content.reshape(1, -1),
                "group": self.group_popular_.group_score_block(np.array([group])),
            }
            return self._few(parts, weights)[0]
        counts = self._side_counts([query.text]) if query.text else sp.csr_matrix((1, len(self.side_terms_)))
        binary = sp.csr_matrix(counts > 0, dtype=np.float64)
        if query.group is not None:
            return self._cold(binary, self._one_hot(query.group), content)
        return self._cold(binary, self.group_weights(side=self._tfidf(counts), vector=query.vector), content)

    def why(self, user_row: int) -> Route:
        """Which route a known user takes."""
        return self.route_of(int(np.diff(self.seen_.indptr)[user_row]))

    # -- persistence ---------------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {
            "user_vectors": self.user_vectors_,
            "centroids": self.centroids_,
            "side_terms": self.side_terms_,
            "side_texts": self.side_texts_,
            "cold_weights": self.cold_weights_,
            "side_idf": self.side_idf_,
            "side_data": self.side_vectors_.data,
            "side_indices": self.side_vectors_.indices,
            "side_indptr": self.side_vectors_.indptr,
            "side_weights": self.side_weights_,
            "side_mean": self.side_mean_,
            "item_mean": self.item_mean_,
            "few_shots": self.few_shots_,
            "few_table": self.few_table_,
            "min_history": np.array(self.min_history_, dtype=np.int64),
            "switch_gains": self.switch_gains_,
            "cold_item_scale": np.array(self.cold_item_scale_, dtype=np.float64),
            "cold_item_scale_trials": self.cold_item_scale_trials_,
        }
        for name, part in self._parts().items():
            out.update({f"{name}.{key}": value for key, value in part._state().items()})
        return out

    def _parts(self) -> dict[str, Recommender]:
        parts: dict[str, Recommender] = {
            "warm": self.warm_,
            "item_knn": self.item_knn_,
            "group_popular": self.group_popular_,
            "content": self.content_,
        }
        if self.cold_items_ is not None:
            parts["cold_items"] = self.cold_items_
        return parts

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        cfg = self.config
        self.user_vectors_ = arrays["user_vectors"]
        self.centroids_ = arrays["centroids"]
        self.side_terms_ = arrays["side_terms"]
        self.side_texts_ = arrays["side_texts"]
        self.cold_weights_ = arrays["cold_weights"]
        self.side_idf_ = arrays["side_idf"]
        self.side_vectors_ = sp.csr_matrix(
            (arrays["side_data"], arrays["side_indices"], arrays["side_indptr"]),
            shape=(len(self.user_vocab_), len(self.side_terms_)),
        )
        self.side_weights_ = arrays["side_weights"]
        self.side_mean_ = arrays["side_mean"]
        self.item_mean_ = arrays["item_mean"]
        self.few_shots_ = arrays["few_shots"]
        self.few_table_ = arrays["few_table"]
        self.min_history_ = int(arrays["min_history"])
        # absent in models saved before them
        self.switch_gains_ = arrays.get("switch_gains", np.zeros((3, 0)))
        self.cold_item_scale_ = float(arrays.get("cold_item_scale", np.array(1.0)))
        self.cold_item_scale_trials_ = arrays.get("cold_item_scale_trials", np.zeros((2, 0)))
        parts: dict[str, Recommender] = {
            "warm": self._make_warm(),
            "item_knn": ItemKNN(cfg.item_knn),
            "group_popular": GroupPopular(cfg.group_popular),
            "content": ContentBased(cfg.content),
        }
        if cfg.cold_items is not None and any(k.startswith("cold_items.") for k in arrays):
            parts["cold_items"] = FeatureCF(cfg.cold_items)
        for name, part in parts.items():
            self._share_fitted_base(part)
            part._set_state({k.removeprefix(f"{name}."): v for k, v in arrays.items() if k.startswith(f"{name}.")})
        self.warm_ = parts["warm"]
        self.item_knn_ = parts["item_knn"]  # type: ignore[assignment]
        self.group_popular_ = parts["group_popular"]  # type: ignore[assignment]
        self.content_ = parts["content"]  # type: ignore[assignment]
        self.cold_items_ = parts.get("cold_items")  # type: ignore[assignment]
