"""Users, items and interactions as Spark DataFrames, with dense row numbers, never collected to the driver.

Row numbers follow the single-machine :class:`~personas.data.Dataset`: users in the order of the users
file, then users only seen in interactions in order of first appearance (items the same way). Equal input
therefore gives equal vocabularies on both engines, and so equal score tie-breaking in the recommenders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pandas as pd

from personas._files import atomic_path
from personas.config import Settings
from personas.data import load_builtin
from personas.errors import DataError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = ["SparkData", "load_frames", "read_table", "stage_builtin", "to_pandas", "with_row_index"]

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv"}


@dataclass
class SparkData:
    """``users`` (``user_row``, ``user_id``, attributes), ``items`` (``item_row``, ``item_id``, ``title``...)
    and ``interactions`` (``user_row``, ``item_row``, ``user_id``, ``item_id``, ``rating``, ``timestamp``,
    ``_ix``: the input order)."""

    name: str
    users: DataFrame
    items: DataFrame
    interactions: DataFrame
    n_users: int
    n_items: int
    n_interactions: int


def to_pandas(frame: DataFrame) -> pd.DataFrame:
    """A (small) DataFrame collected to the driver as pandas, through Arrow."""
    return cast(pd.DataFrame, frame.toPandas())


def read_table(
    spark: SparkSession,
    path: str | Path,
    *,
    kind: str,
    columns: dict[str, str] | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8",
) -> DataFrame:
    """A Parquet or CSV/TSV file (or a folder of Parquet parts) as a DataFrame with canonical column names.

    ``columns`` maps canonical names to the file's names (``{"user_id": "uid"}``), as in the pipeline config.
    """
    from pyspark.sql import functions as sf

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: the {kind} file does not exist; check the path in the 'data' section.")
    suffix = path.suffix.lower() if path.is_file() else ".parquet"
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        raise DataError(
            f"{path}: the Spark engine reads {kind} from Parquet or CSV/TSV files; got a {suffix!r} file. "
            "Convert it (e.g. `personas data convert`) or use the single-machine engine."
        )
    if fmt == "parquet":
        frame = spark.read.parquet(str(path))
    else:
        sep = delimiter or ("\t" if suffix == ".tsv" else ",")
        # every column as text: ids stay strings ("007" is not 7) and numbers are cast where they are used
        frame = spark.read.options(header=True, sep=sep, encoding=encoding, inferSchema=False).csv(str(path))
    renames = {source: canonical for canonical, source in (columns or {}).items()}
    missing = sorted(set(renames) - set(frame.columns))
    if missing:
        raise DataError(
            f"{path}: the column mapping names {missing}, which the {kind} file does not have. "
            f"Its columns: {frame.columns}."
        )
    return frame.select([sf.col(f"`{c}`").alias(renames.get(c, c)) for c in frame.columns])


def with_row_index(frame: DataFrame, name: str) -> DataFrame:
    """``frame`` plus a dense 0-based ``name`` column in the frame's order (partition by partition), without
    moving rows to one partition: each partition's offset is the count of rows before it (a small table)."""
    from pyspark.sql import functions as sf

    tagged = frame.withColumn("_pid", sf.spark_partition_id()).withColumn("_mid", sf.monotonically_increasing_id())
    tagged = tagged.persist()
    counts = sorted(
        (int(r["_pid"]), int(r["n"])) for r in tagged.groupBy("_pid").agg(sf.count("*").alias("n")).collect()
    )
    offsets: list[Column] = []
    total = 0
    for pid, n in counts:
        offsets += [sf.lit(pid), sf.lit(total)]
        total += n
    offset = sf.create_map(*offsets)[sf.col("_pid")] if offsets else sf.lit(0)
    # monotonically_increasing_id puts the partition id in the upper 31 bits and the position in the lower 33
    position = sf.col("_mid") - sf.shiftleft(sf.col("_pid").cast("long"), 33)
    return tagged.withColumn(name, (offset + position).cast("long")).drop("_pid", "_mid")


def _vocabulary(table: DataFrame | None, referenced: DataFrame, id_col: str, row_col: str) -> DataFrame:
    """Every id of ``table`` in its order, then ids only in ``referenced`` by first appearance, numbered."""
    from pyspark.sql import functions as sf

    if table is None:
        known = referenced.limit(0).select(id_col)
        indexed = with_row_index(known, row_col)
        n_known = 0
    else:
        indexed = with_row_index(table, row_col)
        n_known = indexed.count()
        duplicated = indexed.groupBy(id_col).count().filter("count > 1").limit(3).collect()
        if duplicated:
            raise DataError(
                f"The {id_col} column of the table has duplicates ({', '.join(str(r[id_col]) for r in duplicated)}"
                f"...); each {id_col.removesuffix('_id')} must appear once."
            )
    extra = (
        referenced.join(indexed.select(id_col), on=id_col, how="left_anti")
        .groupBy(id_col)
        .agg(sf.min("_ix").alias("_first"))
        .orderBy("_first")
    )
    extra = with_row_index(extra.drop("_first"), row_col).withColumn(row_col, sf.col(row_col) + n_known)
    if table is None:
        return extra
    return indexed.unionByName(extra, allowMissingColumns=True)


def load_frames(
    spark: SparkSession,
    interactions: DataFrame,
    *,
    users: DataFrame | None,
    items: DataFrame | None,
    name: str,
) -> SparkData:
    """Number users and items, attach rows to the interactions, check the required columns."""
    from pyspark.sql import functions as sf

    for col in ("user_id", "item_id"):
        if col not in interactions.columns:
            raise DataError(
                f"The interactions need a {col!r} column; got {interactions.columns}. Map yours with "
                f'[data.columns.interactions] {col} = "your_column".'
            )
    for table, col, kind in ((users, "user_id", "users"), (items, "item_id", "items")):
        if table is not None and col not in table.columns:
            raise DataError(f"The {kind} table needs a {col!r} column; got {table.columns}.")
    inter = with_row_index(
        interactions.withColumn("user_id", sf.col("user_id").cast("string")).withColumn(
            "item_id", sf.col("item_id").cast("string")
        ),
        "_ix",
    )
    for col, kind in (("rating", "double"), ("timestamp", "long")):
        inter = inter.withColumn(col, sf.col(col).cast(kind) if col in inter.columns else sf.lit(None).cast(kind))
    user_table = None if users is None else users.withColumn("user_id", sf.col("user_id").cast("string"))
    item_table = None if items is None else items.withColumn("item_id", sf.col("item_id").cast("string"))
    user_vocab = _vocabulary(user_table, inter.select("user_id", "_ix"), "user_id", "user_row").persist()
    item_vocab = _vocabulary(item_table, inter.select("item_id", "_ix"), "item_id", "item_row").persist()
    if "title" not in item_vocab.columns:
        item_vocab = item_vocab.withColumn("title", sf.lit(None).cast("string"))
    # _ix (input order) lets the driver collect the interactions in the order the single-machine loader keeps
    keep = ["user_row", "item_row", "user_id", "item_id", "rating", "timestamp", "_ix"]
    if "review" in inter.columns:
        keep.append("review")
    joined = (
        inter.join(user_vocab.select("user_id", "user_row"), on="user_id")
        .join(sf.broadcast(item_vocab.select("item_id", "item_row")), on="item_id")
        .select(*keep)
        .persist()
    )
    return SparkData(
        name=name,
        users=user_vocab,
        items=item_vocab,
        interactions=joined,
        n_users=user_vocab.count(),
        n_items=item_vocab.count(),
        n_interactions=joined.count(),
    )


def stage_builtin(name: str, settings: Settings) -> dict[str, Path]:
    """A built-in dataset written once as canonical Parquet files under PERSONAS_HOME/spark/NAME, so the Spark
    engine reads built-in data the same way as a user's files (built-in datasets are small by nature)."""
    folder = settings.home / "spark" / name
    paths = {kind: folder / f"{kind}.parquet" for kind in ("users", "items", "interactions")}
    if all(p.is_file() for p in paths.values()):
        return paths
    dataset = load_builtin(name, settings=settings)
    folder.mkdir(parents=True, exist_ok=True)
    frames = {
        "users": dataset.users,
        "items": dataset.items,
        "interactions": dataset.interactions()[["user_id", "item_id", "rating", "timestamp"]],
    }
    for kind, frame in frames.items():
        with atomic_path(paths[kind]) as tmp:
            frame.to_parquet(tmp, index=False)
    return paths
