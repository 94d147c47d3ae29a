"""Starting Spark: one place that knows the settings personas needs, and the error when PySpark is absent."""

from __future__ import annotations

import os
import shutil
import sys
from typing import TYPE_CHECKING

from personas.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["require_pyspark", "spark_session"]

#: Defaults suited to ``local[N]`` on a small machine; a cluster's own settings win where the caller passes conf.
_DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.adaptive.enabled": "true",
    # few cores: the default 200 shuffle partitions would each carry a task start-up cost for little data
    "spark.sql.shuffle.partitions": "8",
    "spark.driver.memory": "3g",
}


def require_pyspark() -> None:
    """Raise a ConfigError that says how to install PySpark and Java when either is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ConfigError(
            "The Spark engine needs PySpark: pip install 'personas[spark]' (and a Java 17+ runtime, e.g. the "
            "Debian package openjdk-17-jre-headless)."
        ) from None
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise ConfigError(
            "The Spark engine needs a Java runtime (17 or newer) and none was found: install one "
            "(e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME."
        )


def spark_session(
    master: str = "local[2]", *, app_name: str = "personas", conf: dict[str, str] | None = None
) -> SparkSession:
    """The active SparkSession, or a new one on ``master`` (any Spark master URL: ``local[2]``,
    ``spark://host:7077``, ``yarn``...). Settings in ``conf`` override the defaults above; settings of the
    driver JVM (memory) only apply when this call starts it."""
    require_pyspark()
    from pyspark.sql import SparkSession

    if master.startswith("local"):
        # local workers run this interpreter (its packages, personas included), not whatever python3 is on PATH
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in {**_DEFAULT_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
