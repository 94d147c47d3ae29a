"""Recommenders that Spark does not fit (EASE, hybrid, the cold-start router...), fitted on the driver.

The Spark engine fits most-popular, group-popular and ALS as Spark jobs. Any other model of ``[recommend]
models`` is fitted by its single-machine class on the driver, when the data fit there: the interactions are
collected into an in-memory :class:`~personas.data.Dataset` (same users, items and rows as the single-machine
loader gives), and the model gets the same inputs as in the single-machine pipeline (groups, the users' text
vectors and their personas' centroids, the items' texts and the users' side texts encoded by the run's text
encoder, on the Spark workers).

"Fits" is an explicit rule (:func:`driver_bytes` against ``driver_memory_gb`` in the config), checked right
after loading, before the long stages: a run over it is refused with one line that names the models and the
fixes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from personas.config import ComponentConfig, as_name, registry
from personas.data import Dataset, ProfileConfig, build_profiles, item_documents
from personas.errors import ConfigError
from personas.pipeline.config import SPARK_MODEL_KINDS
from personas.recommend import Recommender
from personas.spark._data import to_pandas
from personas.spark._encode import encode_texts

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from personas.spark._data import SparkData

__all__ = ["DriverFit", "check_driver_fit", "collect_dataset", "driver_bytes", "driver_models", "fit_on_driver"]

#: Bytes per interaction on the driver: the Dataset's row arrays (user and item rows, rating, timestamp, review
#: slot: 32 B) and the sparse users x items matrices the models build from them (CSR: ~12 B each, a few at once).
BYTES_PER_INTERACTION = 96
#: Width assumed for the text vectors when the estimate is made (before encoding): MiniLM's 384.
TEXT_DIM = 384
#: Models whose fit holds dense item x item float matrices (EASE's Gram matrix and inverse; item-kNN's
#: similarities before pruning), about three of n_items^2 float64 at once.
ITEM_ITEM_KINDS = frozenset({"ease", "hybrid", "router", "item_knn"})


def driver_models(configs: Mapping[str, ComponentConfig]) -> dict[str, ComponentConfig]:
    """The models of ``configs`` that Spark does not fit (fitted on the driver), in config order."""
    return {name: config for name, config in configs.items() if registry.kind(config) not in SPARK_MODEL_KINDS}


def driver_bytes(
    configs: Mapping[str, ComponentConfig], n_users: int, n_items: int, n_interactions: int, vector_dim: int
) -> int:
    """Estimated peak bytes on the driver for fitting ``configs`` there: the collected interactions, the user
    vectors (the fused vector, the text vector and the side-text vector, float32) and the largest model's
    item x item matrices (models are fitted one after another). 0 when every model is fitted by Spark."""
    models = driver_models(configs)
    if not models:
        return 0
    item_item = max((3 * 8 * n_items**2 if registry.kind(c) in ITEM_ITEM_KINDS else 0) for c in models.values())
    vectors = 4 * n_users * (vector_dim + 2 * TEXT_DIM) + 4 * n_items * TEXT_DIM
    return BYTES_PER_INTERACTION * n_interactions + vectors + item_item


def check_driver_fit(
    configs: Mapping[str, ComponentConfig],
    limit_gb: float,
    n_users: int,
    n_items: int,
    n_interactions: int,
    vector_dim: int,
) -> None:
    """Refuse (one line) when the driver-side models would need more than ``limit_gb`` by :func:`driver_bytes`."""
    need = driver_bytes(configs, n_users, n_items, n_interactions, vector_dim)
    if need <= limit_gb * 1e9:
        return
    names = ", ".join(driver_models(configs))
    spark_names = ", ".join(as_name(k) for k in SPARK_MODEL_KINDS)
    raise ConfigError(
        f"The Spark engine fits {names} on the driver, which needs about {need / 1e9:.1f} GB for these data "
        f"({n_users:,} users, {n_items:,} items, {n_interactions:,} interactions) and driver_memory_gb = "
        f"{limit_gb:g} allows less: raise driver_memory_gb in the config (on a driver that has the memory), or "
        f"keep to the models Spark fits ({spark_names}) in [recommend] models."
    )


def collect_dataset(data: SparkData) -> Dataset:
    """The Spark data as an in-memory Dataset: users and items in row order (so rows are the Spark engine's,
    which are the single-machine loader's), interactions in their input order."""
    users = to_pandas(data.users.orderBy("user_row")).drop(columns=["user_row"])
    items = to_pandas(data.items.orderBy("item_row")).drop(columns=["item_row"])
    for frame, extra in ((users, ("text",)), (items, ("title", "text"))):
        for column in extra:
            if column not in frame:
                frame[column] = None
    columns = ["user_row", "item_row", "rating", "timestamp"] + (
        ["review"] if "review" in data.interactions.columns else []
    )
    rows = to_pandas(data.interactions.orderBy("_ix").select(*columns))
    n = len(rows)
    reviews = np.empty(n, dtype=object)
    if "review" in rows:
        reviews[:] = [None if r is None or r != r else str(r) for r in rows["review"]]
    return Dataset.from_rows(
        users,
        items,
        user_rows=rows["user_row"].to_numpy(np.int32),
        item_rows=rows["item_row"].to_numpy(np.int32),
        ratings=rows["rating"].to_numpy(np.float64, na_value=np.nan),
        timestamps=rows["timestamp"].fillna(-1).to_numpy(np.int64),
        reviews=reviews,
        name=data.name,
    )


class DriverFit:
    """The inputs of the driver-side models that need Spark (the run's text encoder on its workers)."""

    def __init__(self, spark: SparkSession, kind: str, fitted: Any, batch_size: int) -> None:
        self.spark = spark
        self.kind = kind
        self.fitted = fitted
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        """``texts`` encoded on the Spark workers by the run's text encoder, in order (empty texts: zero rows)."""
        rows = [r for r, t in enumerate(texts) if t]
        frame = self.spark.createDataFrame(
            pd.DataFrame({"user_row": np.asarray(rows, dtype=np.int64), "text": [texts[r] for r in rows]})
        )
        encoded = to_pandas(encode_texts(frame, self.kind, fitted=self.fitted, batch_size=self.batch_size))
        width = len(encoded["vector"].iloc[0]) if len(encoded) else TEXT_DIM
        out = np.zeros((len(texts), width), dtype=np.float32)
        if len(encoded):
            out[encoded["user_row"].to_numpy(np.int64)] = np.stack(encoded["vector"].to_numpy())
        return out

    def item_text_vectors(self, dataset: Dataset) -> np.ndarray:
        """The items' own texts in the users' text space, as the single-machine pipeline builds them."""
        return self.encode(item_documents(dataset, max_reviews=3))

    def side_vectors(self, dataset: Dataset, profiles: ProfileConfig, width: int) -> np.ndarray:
        """Each user's side text alone (own words, reviews, tags, demographics; not their items), zero rows for
        users without one (``width``: the item text vectors')."""
        parts = tuple(p for p in profiles.parts if p != "behaviour")
        texts = build_profiles(dataset, profiles.model_copy(update={"parts": parts})) if parts else []
        if not any(texts):
            return np.zeros((dataset.n_users, width), dtype=np.float32)
        return self.encode(texts)


def fit_on_driver(
    configs: Mapping[str, ComponentConfig],
    dataset: Dataset,
    labels: np.ndarray,
    *,
    text_vectors: np.ndarray | None,
    centroids: np.ndarray | None,
    item_text_vectors: np.ndarray | None,
    side_vectors: np.ndarray | None,
) -> dict[str, Recommender]:
    """The single-machine recommenders of ``configs``, fitted as :meth:`personas.pipeline.Pipeline.fit_models`
    fits them."""
    groups = np.where(labels >= 0, labels, -1)
    models: dict[str, Recommender] = {}
    for name, config in configs.items():
        if registry.kind(config) in SPARK_MODEL_KINDS:
            raise ConfigError(f"{name} is fitted by Spark, not on the driver.")  # a caller's mistake
        models[name] = registry.build(config, Recommender).fit(
            dataset,
            groups=groups,
            user_vectors=text_vectors,
            centroids=centroids,
            item_text_vectors=item_text_vectors,
            side_vectors=side_vectors,
        )
    return models
