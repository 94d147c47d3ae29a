"""Recommenders: fit on a Dataset (optionally with group labels), recommend top-n items in batches."""

from personas.recommend.base import MostPopular, Random, Recommendations, Recommender, top_n

__all__ = ["MostPopular", "Random", "Recommendations", "Recommender", "top_n"]
