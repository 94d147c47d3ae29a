"""Groups in Spark: spherical k-means (Spark's KMeans, cosine distance) or bisecting k-means.

k-means is seeded the way the single-machine engine seeds it: greedy k-means++ and ``seed_iter`` Lloyd
iterations of :class:`~personas.discover.KMeansGroups` on a seeded sample of at most ``sample_rows``
vectors (collected to the driver: ``sample_rows x d`` floats), then Spark's cosine k-means iterates over
every row from those centres. When the data fit in the sample, both engines therefore start from the same
centres, and their results can be compared group for group (tests/spark).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from personas.config import ComponentConfig
from personas.discover import KMeansGroups
from personas.spark._data import to_pandas

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["SparkKMeansConfig", "assign_nearest", "sample_vectors", "spark_kmeans"]


class SparkKMeansConfig(ComponentConfig):
    algorithm: Literal["kmeans", "bisecting"] = "kmeans"
    k: int = Field(8, ge=2)
    seed: int = 0
    n_init: int = Field(1, ge=1, description="Restarts of the seeding on the sample (single-machine k-means).")
    seed_iter: int = Field(1, ge=1, description="Lloyd iterations on the sample before Spark takes over.")
    max_iter: int = Field(25, ge=1, description="Spark k-means iterations over all rows.")
    sample_rows: int = Field(20_000, ge=2, description="Rows collected to the driver for seeding.")


def sample_vectors(vectors: DataFrame, rows: int, seed: int, total: int) -> np.ndarray:
    """At most ``rows`` vectors (seeded sample, in user-row order) as a float32 array on the driver."""
    picked = vectors if total <= rows else vectors.sample(fraction=min(1.0, 1.2 * rows / total), seed=seed)
    frame = to_pandas(picked.orderBy("user_row").limit(rows).select("vector"))
    return np.asarray(np.stack(frame["vector"].to_numpy()), dtype=np.float32)


def assign_nearest(vectors: DataFrame, centres: np.ndarray) -> DataFrame:
    """``user_row``, ``group``, ``similarity``: each unit vector's nearest centre by cosine (ties: lower id)."""
    from pyspark.sql.functions import pandas_udf
    from pyspark.sql.types import DoubleType, LongType, StructField, StructType

    unit = centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    schema = StructType([StructField("group", LongType()), StructField("similarity", DoubleType())])

    @pandas_udf(schema)  # type: ignore[call-overload]
    def nearest(batch: pd.Series) -> pd.DataFrame:
        x = np.stack(batch.to_numpy()).astype(np.float64)
        sims = x @ unit.T.astype(np.float64)
        best = np.argmax(sims, axis=1)
        return pd.DataFrame({"group": best.astype(np.int64), "similarity": sims[np.arange(len(best)), best]})

    return vectors.select("user_row", nearest("vector").alias("_n")).select("user_row", "_n.group", "_n.similarity")


def spark_kmeans(vectors: DataFrame, config: SparkKMeansConfig, *, total: int) -> np.ndarray:
    """Unit centres (k, d) of cosine k-means over ``vectors`` (``user_row``, ``vector`` unit array)."""
    from pyspark.ml.functions import array_to_vector

    if config.algorithm == "bisecting":
        from pyspark.ml.clustering import BisectingKMeans

        features = vectors.select(array_to_vector(vectors["vector"]).alias("features"))
        bisecting = BisectingKMeans(k=config.k, seed=config.seed, distanceMeasure="cosine", maxIter=config.max_iter)
        centres = np.asarray([np.asarray(c) for c in bisecting.fit(features).clusterCenters()], dtype=np.float64)
    else:
        from pyspark.mllib.clustering import KMeans, KMeansModel

        sample = sample_vectors(vectors, config.sample_rows, config.seed, total)
        seeding = KMeansGroups(
            k=min(config.k, len(sample)),
            seed=config.seed,
            n_init=config.n_init,
            max_iter=config.seed_iter,
            engine="numpy",
        ).fit(sample)
        # Spark ML's KMeans takes no initial centres; its RDD-based engine (the same algorithm) does.
        rdd = vectors.select("vector").rdd.map(lambda row: np.asarray(row[0], dtype=np.float64)).cache()
        model = KMeans.train(
            rdd,
            k=len(seeding.centroids_),
            maxIterations=config.max_iter,
            initialModel=KMeansModel([np.asarray(c, dtype=np.float64) for c in seeding.centroids_]),
            epsilon=1e-9,  # iterate until the centres stop moving, like the single-machine loop
            seed=config.seed,
            distanceMeasure="cosine",
        )
        rdd.unpersist()
        centres = np.asarray([np.asarray(c) for c in model.clusterCenters], dtype=np.float64)
    norms = np.linalg.norm(centres, axis=1, keepdims=True)
    return (centres / np.where(norms > 0, norms, 1.0)).astype(np.float32)
