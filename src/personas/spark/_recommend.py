"""Recommenders fitted with Spark: popularity and group popularity from aggregations, ALS with Spark ML.

The results are handed back as the single-machine recommender classes (``MostPopular``, ``GroupPopular``,
``ALS``) with the same saved arrays, so ``personas recommend --model`` and ``personas serve`` use them
unchanged. Only per-group/per-item tables and factor matrices come to the driver, plus what the saved
format itself holds per user (ids, group labels, the seen-items lists that exclude what a user already has).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from personas.config import ComponentConfig, as_name, registry
from personas.errors import ConfigError
from personas.pipeline.config import SPARK_MODEL_KINDS
from personas.recommend import Recommender
from personas.recommend.als import ALSConfig
from personas.recommend.base import SAVED_FORMAT, tie_break_noise
from personas.recommend.popular import GroupPopularConfig
from personas.spark._data import to_pandas
from personas.spark._encode import pairs_blocks
from personas.spark._session import ensure_checkpoint_dir

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from personas.spark._data import SparkData

__all__ = ["SPARK_MODELS", "SeenItems", "fit_spark_models", "seen_items"]

#: Recommenders the Spark engine fits: a subset of the registry's kinds (``[recommend] models`` spells them
#: most-popular, group-popular, als); the config refuses others when it is read.
SPARK_MODELS = SPARK_MODEL_KINDS
#: ALS iterations between checkpoints (they cut the lineage that otherwise grows with every iteration).
ALS_CHECKPOINT_INTERVAL = 5


@dataclass
class SeenItems:
    """What every saved model shares: ids in row order and the users x items seen matrix as CSR arrays."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    popularity: np.ndarray  # users who took each item
    pairs: DataFrame  # distinct (user_row, item_row), persisted


def seen_items(data: SparkData) -> SeenItems:
    pairs = data.interactions.select("user_row", "item_row").distinct().persist()
    frame = to_pandas(pairs.orderBy("user_row", "item_row"))
    users = frame["user_row"].to_numpy(np.int64)
    indptr = np.zeros(data.n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=data.n_users), out=indptr[1:])
    indices = frame["item_row"].to_numpy(np.int32)
    popularity = np.bincount(indices, minlength=data.n_items).astype(np.float64)
    ids = to_pandas(data.users.select("user_row", "user_id").orderBy("user_row"))["user_id"].to_numpy(str)
    items = to_pandas(data.items.select("item_row", "item_id").orderBy("item_row"))["item_id"].to_numpy(str)
    return SeenItems(ids, items, indptr, indices, popularity, pairs)


def _as_model(class_name: str, config: dict[str, object], seen: SeenItems, state: dict[str, np.ndarray]) -> Recommender:
    """A recommender object from its arrays, in the saved format (so it is saved and served like any other)."""
    arrays = {
        "user_ids": seen.user_ids,
        "item_ids": seen.item_ids,
        "seen_indptr": seen.indptr,
        "seen_indices": seen.indices,
        "popularity": seen.popularity,
        "tie_break": tie_break_noise(len(seen.item_ids)),
        **{f"model.{k}": v for k, v in state.items()},
    }
    return Recommender.from_arrays(arrays, {"class": class_name, "format": SAVED_FORMAT, "config": config})


def group_popular_state(
    seen: SeenItems, labels: np.ndarray, group_of: DataFrame, n_groups: int, config: GroupPopularConfig
) -> dict[str, np.ndarray]:
    """GroupPopular's arrays from per-group item counts computed in Spark (see GroupPopular._fit)."""
    n_items = len(seen.item_ids)
    active_users = float((np.diff(seen.indptr) > 0).sum())
    global_rate = seen.popularity / max(active_users, 1.0)
    counts = np.zeros((n_groups, n_items))
    per_group = seen.pairs.join(group_of.filter("group >= 0"), on="user_row").groupBy("group", "item_row").count()
    table = to_pandas(per_group)
    counts[table["group"].to_numpy(np.int64), table["item_row"].to_numpy(np.int64)] = table["count"].to_numpy()
    active = np.diff(seen.indptr) > 0
    sizes = np.bincount(labels[(labels >= 0) & active], minlength=n_groups).astype(np.float64)
    s = config.shrinkage
    denom = sizes[:, None] + s
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = (counts + s * global_rate[None, :]) / denom
    return {
        "labels": labels.astype(np.int64),
        "group_scores": np.where(denom > 0, rates, global_rate[None, :]),
        "global_rate": global_rate,
        "group_sizes": sizes,
    }


def als_state(data: SparkData, seen: SeenItems, config: ALSConfig) -> dict[str, np.ndarray]:
    """User and item factors of implicit-feedback ALS (Spark ML) over the seen matrix."""
    from pyspark.ml import recommendation
    from pyspark.sql import functions as sf

    # Each ALS iteration extends the lineage; without checkpoints a long one overflows the JVM stack
    # (StackOverflowError on ml-100k with the default 15 iterations). Spark checkpoints only with a directory.
    ensure_checkpoint_dir(seen.pairs.sparkSession)
    ratings = seen.pairs.select(
        sf.col("user_row").cast("int").alias("user"),
        sf.col("item_row").cast("int").alias("item"),
        sf.lit(1.0).alias("r"),
    )
    model = recommendation.ALS(
        rank=config.factors,
        maxIter=config.iterations,
        regParam=config.regularization,
        alpha=config.alpha,
        implicitPrefs=True,
        seed=config.seed,
        userCol="user",
        itemCol="item",
        ratingCol="r",
        # one block per core: the default 10 blocks only add task overhead on small clusters
        numUserBlocks=pairs_blocks(ratings),
        numItemBlocks=pairs_blocks(ratings),
        nonnegative=False,
        checkpointInterval=ALS_CHECKPOINT_INTERVAL,
    ).fit(ratings)

    def factors(frame: DataFrame, n: int) -> np.ndarray:
        table = to_pandas(frame)
        out = np.zeros((n, config.factors), dtype=np.float32)  # users/items without interactions stay at zero
        if len(table):
            out[table["id"].to_numpy(np.int64)] = np.stack(table["features"].to_numpy())
        return out

    return {
        "user_factors": factors(model.userFactors, len(seen.user_ids)),
        "item_factors": factors(model.itemFactors, len(seen.item_ids)),
    }


def fit_spark_models(
    configs: Mapping[str, ComponentConfig],
    data: SparkData,
    seen: SeenItems,
    labels: np.ndarray,
    group_of: DataFrame,
    n_groups: int,
) -> dict[str, Recommender]:
    """The models of ``[recommend] models`` (TOML name -> config), fitted on Spark."""
    kinds = {name: registry.kind(config) for name, config in configs.items()}
    unsupported = [name for name, kind in kinds.items() if kind not in SPARK_MODELS]
    if unsupported:
        raise ConfigError(
            f"The Spark engine fits the recommenders {[as_name(k) for k in SPARK_MODELS]}; the config asks for "
            f'{unsupported}. Remove them from [recommend] models or run with engine = "local".'
        )
    models: dict[str, Recommender] = {}
    for name, config in configs.items():
        class_name = registry.get(kinds[name], Recommender).__name__
        if isinstance(config, GroupPopularConfig):
            state = group_popular_state(seen, labels, group_of, n_groups, config)
        elif isinstance(config, ALSConfig):
            state = als_state(data, seen, config)
        else:
            state = {}
        models[name] = _as_model(class_name, config.model_dump(mode="json"), seen, state)
    return models
