"""The pipeline on Apache Spark (``pip install 'personas[spark]'``, Java 17+): ``engine = "spark"`` in the
pipeline config or ``personas run --engine spark --master local[2]``. It writes the same run folder as the
single-machine pipeline. PySpark is imported only when a Spark function runs."""

from personas.spark._data import SparkData, load_frames, read_table, with_row_index
from personas.spark._discover import SparkKMeansConfig, assign_nearest, spark_kmeans
from personas.spark._run import DatasetSummary, SparkPipeline, SparkResult
from personas.spark._session import require_pyspark, spark_session

__all__ = [
    "DatasetSummary",
    "SparkData",
    "SparkKMeansConfig",
    "SparkPipeline",
    "SparkResult",
    "assign_nearest",
    "load_frames",
    "read_table",
    "require_pyspark",
    "spark_kmeans",
    "spark_session",
    "with_row_index",
]
