"""One local Spark session and one Spark pipeline run on ml-100k, shared by the Spark tests.

The run takes precomputed vectors (TF-IDF text fused with SVD behaviour, made by the single-machine
encoders), so both engines group the same vectors. Skipped only where PySpark or Java is missing; `make test`
installs both (the dev extra and scripts/ensure-system-deps).
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from personas.data import Dataset, build_profiles
from personas.encode import BehaviourEncoder, fuse, make_encoder
from personas.pipeline import PipelineConfig

K = 6
SEED = 0


def _spark_missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "PySpark is not installed: pip install 'personas[spark]' (the dev extra includes it)."
    if shutil.which("java") is None:
        return "No Java runtime: scripts/ensure-system-deps installs openjdk-17-jre-headless."
    return None


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    reason = _spark_missing()
    if reason:
        pytest.skip(reason)
    from personas.spark import spark_session

    session = spark_session(
        "local[2]",
        app_name="personas-tests",
        conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2", "spark.driver.memory": "1g"},
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def ml100k_vectors(ml100k: Dataset) -> np.ndarray:
    """Single-machine vectors in user-row order: TF-IDF (64-d) of the profile texts fused with SVD behaviour."""
    texts = build_profiles(ml100k)
    text = make_encoder("tfidf", n_components=64, seed=SEED).fit(texts).encode(texts, show_progress=False)
    behaviour = BehaviourEncoder(n_components=32, seed=SEED).fit(ml100k).vectors_
    return np.asarray(fuse(text, behaviour, text_weight=0.5), dtype=np.float32)


@pytest.fixture(scope="session")
def spark_run(spark: Any, ml100k: Dataset, ml100k_vectors: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The Spark pipeline on ml-100k with the vectors above; its run folder is ``spark_run.folder``."""
    from personas.spark import SparkKMeansConfig, SparkPipeline

    folder = tmp_path_factory.mktemp("spark") / "run"
    config = PipelineConfig.model_validate(
        {
            "engine": "spark",
            "data": {"dataset": "ml-100k"},
            "discover": {"k": K, "seed": SEED},
            "recommend": {"models": ["most-popular", "group-popular", "als"]},
            "evaluate": {"enabled": False},
            "output": {"dir": str(folder), "report": False},
        }
    )
    vectors = spark.createDataFrame(
        [(uid, row.tolist()) for uid, row in zip(ml100k.user_vocab.ids, ml100k_vectors, strict=True)],
        "user_id string, vector array<float>",
    )
    result = SparkPipeline(config, spark=spark, kmeans=SparkKMeansConfig(k=K, seed=SEED)).run(vectors=vectors)
    result.folder = Path(folder)
    return result
