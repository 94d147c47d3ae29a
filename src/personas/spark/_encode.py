"""User vectors in Spark: texts encoded in batches by ``predict_batch_udf`` (the model is built once per
Python worker and reused across batches), or precomputed vectors joined by user id.

The encoders are those of :mod:`personas.encode`. A TF-IDF encoder must be fitted: it is fitted on the
driver on a seeded sample of at most ``fit_rows`` profile texts, then sent to the workers fitted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from personas.config import Settings, get_settings
from personas.encode import make_encoder
from personas.errors import DataError
from personas.spark._data import to_pandas
from personas.spark._session import ensure_checkpoint_dir

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = [
    "encode_texts",
    "fit_tfidf",
    "fuse_columns",
    "join_vectors",
    "pairs_blocks",
    "unit_vector_column",
    "worker_encoder",
]


def fit_tfidf(texts: DataFrame, *, fit_rows: int = 100_000, seed: int = 0, **params: Any) -> Any:
    """A TF-IDF/LSA encoder fitted on the driver on at most ``fit_rows`` texts (a seeded sample)."""
    n = texts.count()
    sample = texts if n <= fit_rows else texts.sample(fraction=min(1.0, 1.2 * fit_rows / n), seed=seed).limit(fit_rows)
    corpus = [t for t in to_pandas(sample.select("text"))["text"].tolist() if t]
    return make_encoder("tfidf", seed=seed, **params).fit(corpus)


def worker_encoder(kind: str) -> Any:
    """The encoder a Spark task builds for ``kind``: one thread, since Spark already runs one task per core."""
    return make_encoder(kind) if kind == "tfidf" else make_encoder(kind, threads=1)


def _predictor(
    kind: str, fitted: Any, batch_size: int, home: str | None
) -> Callable[[], Callable[[np.ndarray], np.ndarray]]:
    def make_predict_fn() -> Callable[[np.ndarray], np.ndarray]:
        # runs once per Python worker: a language model is loaded there (from the driver's PERSONAS_HOME, where
        # the driver has built it), not shipped from the driver
        if home is not None and os.environ.get("PERSONAS_HOME") != home:
            os.environ["PERSONAS_HOME"] = home
            get_settings.cache_clear()
        encoder = fitted if fitted is not None else worker_encoder(kind)

        def predict(texts: np.ndarray) -> np.ndarray:
            batch = [str(t) if t is not None else "" for t in texts]
            return np.asarray(encoder.encode(batch, batch_size=batch_size, show_progress=False), dtype=np.float32)

        return predict

    return make_predict_fn


def encode_texts(
    profiles: DataFrame,
    kind: str,
    *,
    fitted: Any = None,
    batch_size: int = 64,
    rows_per_batch: int = 1024,
    settings: Settings | None = None,
) -> DataFrame:
    """``user_row``, ``vector`` (array<float>, unit length) for every row of ``profiles`` (``user_row``, ``text``).

    ``fitted``: an encoder sent to the workers as it is (TF-IDF fitted on the driver); otherwise each worker
    builds ``make_encoder(kind)`` once. A model built on first use (the fused int8 MiniLM) is built here on the
    driver first, into ``settings.home``, so that workers only load it."""
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql.types import ArrayType, FloatType

    home = None
    if fitted is None:
        settings = settings or get_settings()
        home = str(settings.home)
        with _home(home):
            worker_encoder(kind).encode(["personas"], show_progress=False)
    udf = predict_batch_udf(
        _predictor(kind, fitted, batch_size, home), return_type=ArrayType(FloatType()), batch_size=rows_per_batch
    )
    return profiles.select("user_row", udf("text").alias("vector"))


@contextmanager
def _home(home: str) -> Iterator[None]:
    """``PERSONAS_HOME`` set to ``home`` for the duration (the settings are read again on the way in and out)."""
    before = os.environ.get("PERSONAS_HOME")
    os.environ["PERSONAS_HOME"] = home
    get_settings.cache_clear()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PERSONAS_HOME", None)
        else:
            os.environ["PERSONAS_HOME"] = before
        get_settings.cache_clear()


def unit_vector_column(column: str) -> Any:
    """A Column: the array column scaled to unit length (zero vectors stay zero)."""
    from pyspark.sql import functions as sf

    norm = sf.sqrt(sf.aggregate(sf.col(column), sf.lit(0.0), lambda acc, x: acc + x * x))
    return sf.transform(sf.col(column), lambda x: sf.when(norm > 0, x / norm).otherwise(sf.lit(0.0)).cast("float"))


def fuse_columns(frame: DataFrame, text: str, behaviour: str, text_weight: float) -> DataFrame:
    """``vector`` = unit(sqrt(w) * text ++ sqrt(1 - w) * behaviour), as :func:`personas.encode.fuse` does."""
    from pyspark.sql import functions as sf

    a, b = float(np.sqrt(text_weight)), float(np.sqrt(1.0 - text_weight))
    joined = sf.concat(sf.transform(sf.col(text), lambda x: x * a), sf.transform(sf.col(behaviour), lambda x: x * b))
    return frame.withColumn("_joined", joined).withColumn("vector", unit_vector_column("_joined")).drop("_joined")


def join_vectors(users: DataFrame, vectors: DataFrame) -> DataFrame:
    """Precomputed vectors (``user_id``, ``vector`` array) attached to user rows; every user needs one."""
    from pyspark.sql import functions as sf

    if not {"user_id", "vector"} <= set(vectors.columns):
        raise DataError(f"Precomputed vectors need 'user_id' and 'vector' columns; got {vectors.columns}.")
    joined = users.select("user_row", "user_id").join(
        vectors.select(sf.col("user_id").cast("string").alias("user_id"), "vector"), on="user_id", how="left"
    )
    missing = joined.filter(sf.col("vector").isNull()).limit(3).collect()
    if missing:
        raise DataError(
            f"Precomputed vectors are missing for users {[r['user_id'] for r in missing]} (and maybe more); "
            "give one vector per user of the data."
        )
    return joined.select("user_row", unit_vector_column("vector").alias("vector"))


def behaviour_vectors(pairs: DataFrame, users: DataFrame, *, dim: int, seed: int) -> DataFrame:
    """``user_row``, ``behaviour``: unit user factors of implicit ALS on the seen pairs (Spark ML), the Spark
    engine's behaviour encoder (the single-machine one is a truncated SVD of the same matrix). Users without
    interactions get a zero vector."""
    from pyspark.ml import recommendation
    from pyspark.sql import functions as sf

    ensure_checkpoint_dir(pairs.sparkSession)  # 10 iterations: one checkpoint keeps the lineage short
    ratings = pairs.select(
        sf.col("user_row").cast("int").alias("user"),
        sf.col("item_row").cast("int").alias("item"),
        sf.lit(1.0).alias("r"),
    )
    model = recommendation.ALS(
        rank=dim,
        maxIter=10,
        regParam=0.05,
        implicitPrefs=True,
        alpha=5.0,
        seed=seed,
        userCol="user",
        itemCol="item",
        ratingCol="r",
        # one block per core: the default 10 blocks only add task overhead on small clusters
        numUserBlocks=pairs_blocks(ratings),
        numItemBlocks=pairs_blocks(ratings),
        checkpointInterval=5,
    ).fit(ratings)
    factors = model.userFactors.select(sf.col("id").cast("long").alias("user_row"), sf.col("features").alias("b"))
    zero = sf.array_repeat(sf.lit(0.0).cast("float"), dim)
    joined = users.select("user_row").join(factors, on="user_row", how="left")
    return joined.select("user_row", sf.coalesce(sf.col("b"), zero).alias("b")).select(
        "user_row", unit_vector_column("b").alias("behaviour")
    )


def pairs_blocks(frame: DataFrame) -> int:
    """ALS blocks: one per core of the session (its default parallelism), at least 2."""
    return max(2, frame.sparkSession.sparkContext.defaultParallelism)
