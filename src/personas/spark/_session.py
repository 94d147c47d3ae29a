"""Starting Spark: one place that knows the settings personas needs, and the error when PySpark is absent."""

from __future__ import annotations

import atexit
import ctypes.util
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from personas._files import write_atomic
from personas.config import get_settings
from personas.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["ensure_checkpoint_dir", "require_pyspark", "spark_session"]

#: PySpark 4 warns on every import of its pandas helpers that pandas 3 is "not yet fully supported" (a
#: FutureWarning in the driver and in every Python worker); the conversions personas uses are tested with it.
_PANDAS_WARNING = "PySpark does not yet fully support pandas"
#: The JVM's log configuration: errors only, so a run's terminal shows personas' stage lines, not Spark's
#: start-up notices (NativeCodeLoader's warning; "Setting default log level", which Spark prints when the logger
#: of the shell's entry point, for PySpark its gateway server, has no level of its own). Errors reach stderr.
_LOG4J2 = """\
rootLogger.level = error
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""

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

    # narrowly: this one message, in the driver and (through their environment) in the Python workers
    warnings.filterwarnings("ignore", message=_PANDAS_WARNING, category=FutureWarning)
    java_options = [f"-Dlog4j2.configurationFile={_log_config()}"]
    for library in ("blas", "lapack"):
        # Spark ML's netlib tries the system library first and prints a dlopen error where there is none
        # (then uses its Java implementation): skip the attempt where it cannot succeed.
        if ctypes.util.find_library(library) is None:
            java_options.append(f"-Ddev.ludovic.netlib.{library}.allowNative=false")
    quiet = {
        "spark.executorEnv.PYTHONWARNINGS": f"ignore:{_PANDAS_WARNING}:FutureWarning",
        "spark.driver.extraJavaOptions": " ".join(java_options),
    }
    if master.startswith("local"):
        # local workers run this interpreter (its packages, personas included), not whatever python3 is on PATH
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in {**_DEFAULT_CONF, **quiet, **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _log_config() -> Path:
    """The JVM's log4j2 configuration, written once under PERSONAS_HOME/spark."""
    path = get_settings().home / "spark" / "log4j2.properties"
    if not path.is_file() or path.read_text(encoding="utf-8") != _LOG4J2:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, _LOG4J2)
    return path


def ensure_checkpoint_dir(spark: SparkSession) -> None:
    """Give the session a checkpoint directory (a temporary folder removed at exit) unless it has one: iterative
    Spark ML fits (ALS) cut their lineage only with one, and without it a long fit overflows the JVM stack."""
    context = spark.sparkContext
    if context.getCheckpointDir() is None:
        folder = tempfile.mkdtemp(prefix="personas-spark-checkpoints-")
        atexit.register(shutil.rmtree, folder, True)  # checkpoints only serve this process's fits
        context.setCheckpointDir(folder)
