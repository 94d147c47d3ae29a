"""Recommenders: fit on a Dataset (optionally with group labels), recommend top-n items in batches.

Every model: ``fit(dataset, groups=None)``, ``recommend(user_ids, n)`` -> ``(ids, scores)``,
``recommend_new(text=..., vector=..., history=..., group=...)`` for users never seen, ``save(folder)`` and
``Recommender.load(folder)`` (arrays + JSON, no pickle).
"""

from personas.recommend.als import ALS, ALSConfig
from personas.recommend.base import (
    ITEM_PARTS,
    NO_REASON,
    FitInputs,
    MostPopular,
    NewUser,
    Random,
    Reason,
    Recommendations,
    Recommender,
    history_row,
    normalise_rows,
    reason_phrases,
    top_n,
)
from personas.recommend.content import ContentBased, ContentConfig, item_texts
from personas.recommend.ease import EASE, EASEConfig
from personas.recommend.feature_cf import FeatureCF, FeatureCFConfig, fill_cold_items, item_feature_blocks
from personas.recommend.hybrid import Hybrid, HybridConfig
from personas.recommend.neighbours import ItemKNN, ItemKNNConfig
from personas.recommend.placement import GroupPlacer
from personas.recommend.popular import GroupPopular, GroupPopularConfig
from personas.recommend.router import ColdStartRouter, ColdStartRouterConfig
from personas.recommend.text_match import TextMatch, TextMatchConfig

# Their configs do not declare a kind yet (those modules are being reworked); registered here until they do.

__all__ = [
    "ALS",
    "EASE",
    "ITEM_PARTS",
    "NO_REASON",
    "ALSConfig",
    "ColdStartRouter",
    "ColdStartRouterConfig",
    "ContentBased",
    "ContentConfig",
    "EASEConfig",
    "FeatureCF",
    "FeatureCFConfig",
    "FitInputs",
    "GroupPlacer",
    "GroupPopular",
    "GroupPopularConfig",
    "Hybrid",
    "HybridConfig",
    "ItemKNN",
    "ItemKNNConfig",
    "MostPopular",
    "NewUser",
    "Random",
    "Reason",
    "Recommendations",
    "Recommender",
    "TextMatch",
    "TextMatchConfig",
    "fill_cold_items",
    "history_row",
    "item_feature_blocks",
    "item_texts",
    "normalise_rows",
    "reason_phrases",
    "top_n",
]
