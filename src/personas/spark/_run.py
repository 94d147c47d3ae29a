"""The pipeline on Spark: load -> profile texts -> vectors -> groups -> personas -> recommenders -> run folder.

Every stage runs as Spark jobs over DataFrames; the driver receives only samples (seeding, TF-IDF fitting,
quality scores), per-group tables and model arrays. The run folder has the format of
:mod:`personas.pipeline.artefact`, written by the same writer, so ``personas serve`` and
``personas recommend --model`` read it unchanged. Evaluation (a temporal split and full ranking per user) is
not run on Spark; run the single-machine pipeline on a sample for metrics.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markup import escape
from threadpoolctl import threadpool_limits

from personas.config import ComponentConfig, Settings, get_settings
from personas.describe import DescribeConfig, Persona, personas_to_json
from personas.discover import KMeansGroups, choose_k, group_quality
from personas.errors import ConfigError
from personas.pipeline import Pipeline, PipelineConfig, write_run
from personas.pipeline.report import render_report
from personas.recommend import Recommender
from personas.spark._data import SparkData, load_frames, read_table, stage_builtin, to_pandas
from personas.spark._describe import describe_groups_spark
from personas.spark._discover import SparkKMeansConfig, assign_nearest, sample_vectors, spark_kmeans
from personas.spark._driver import TEXT_DIM, DriverFit, check_driver_fit, collect_dataset, driver_models, fit_on_driver
from personas.spark._encode import (
    behaviour_vectors,
    encode_texts,
    fit_tfidf,
    fuse_columns,
    join_vectors,
    worker_encoder,
)
from personas.spark._profiles import build_profiles_sql
from personas.spark._recommend import fit_spark_models, seen_items
from personas.spark._session import spark_session

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["DatasetSummary", "SparkPipeline", "SparkResult"]

#: users drawn for the 2-D map in report.html (the run folder's users.parquet has every user)
_REPORT_USERS = 20_000


def spark_text_kind(kind: str) -> str:
    """The text encoder a Spark run uses: ``"auto"`` is MiniLM there (the corpus language is detected by the
    single-machine engine only)."""
    return "minilm" if kind == "auto" else kind


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    n_users: int
    n_items: int
    n_interactions: int


@dataclass
class SparkResult:
    """What a Spark run produced that fits on the driver (the run folder holds the rest)."""

    config: PipelineConfig
    dataset: DatasetSummary
    encoder_name: str
    labels: np.ndarray
    centroids: np.ndarray
    personas: list[Persona]
    models: dict[str, Recommender]
    quality: dict[str, Any]
    metrics: pd.DataFrame | None = None
    timings: dict[str, float] = field(default_factory=dict)


class SparkPipeline:
    """``SparkPipeline(config).run()``; ``run(vectors=frame)`` takes precomputed vectors (``user_id``,
    ``vector`` array) instead of encoding. ``spark`` (a session), ``settings`` and ``console`` are injectable;
    ``kmeans`` overrides the Spark k-means settings (the config gives k and seed)."""

    def __init__(
        self,
        config: PipelineConfig,
        *,
        spark: SparkSession | None = None,
        settings: Settings | None = None,
        console: Console | None = None,
        kmeans: SparkKMeansConfig | None = None,
    ) -> None:
        self.config = config
        self.settings = settings or get_settings()
        self.console = console or Console(stderr=True)
        self.spark = spark
        self.kmeans = kmeans
        # the single-machine pipeline's stage timer: same console lines, same timings dict
        self._clock = Pipeline(config, settings=self.settings, console=self.console)
        self.timings = self._clock.timings
        self.text_fitted_: Any = None  # the TF-IDF encoder fitted on the driver ([encode] kind = "tfidf")

    # ------------------------------------------------------------------------------------------ stages
    def load(self, spark: SparkSession) -> SparkData:
        section = self.config.data
        if section.dataset is not None:
            paths: dict[str, Path | None] = dict(stage_builtin(section.dataset, self.settings))
            name = section.dataset
        else:
            paths = {"interactions": section.interactions, "users": section.users, "items": section.items}
            name = Path(str(section.interactions)).stem
        tables: dict[str, DataFrame | None] = {}
        for kind, path in paths.items():
            columns = self.config.data.columns.get(kind, {})  # type: ignore[call-overload]
            tables[kind] = (
                None
                if path is None
                else read_table(
                    spark, path, kind=kind, columns=columns, delimiter=section.delimiter, encoding=section.encoding
                )
            )
        interactions = tables["interactions"]
        assert interactions is not None  # the config validator requires a source
        return load_frames(spark, interactions, users=tables["users"], items=tables["items"], name=name)

    def encode(self, data: SparkData, texts: DataFrame, vectors: DataFrame | None) -> tuple[DataFrame, str, bool]:
        """``user_row``, ``vector`` (+ ``text_vector`` when text is used); the encoder's name; text used?"""
        if vectors is not None:
            return join_vectors(data.users, vectors), "precomputed", False
        section = self.config.encode
        seed = self.config.discover.seed
        frame: DataFrame | None = None
        names = []
        if isinstance(section.behaviour_weight, str):  # "auto" is measured by the local engine only
            self.console.print(
                '[yellow]Note:[/] behaviour_weight = "auto" is measured by the local engine; the Spark engine uses '
                "0.5. Set \\[encode] behaviour_weight to a number (a local run on a sample prints its choice).",
                highlight=False,
            )
        weight = 0.5 if isinstance(section.behaviour_weight, str) else section.behaviour_weight
        if weight < 1.0:
            kind = spark_text_kind(section.kind)
            fitted = fit_tfidf(texts, seed=seed) if kind == "tfidf" else None
            self.text_fitted_ = fitted  # the driver-side models' item and side texts use it too
            frame = encode_texts(texts, kind, fitted=fitted, batch_size=section.batch_size, settings=self.settings)
            frame = frame.withColumnRenamed("vector", "text_vector")
            # the encoder's full name (model file and tokenizer hashes), as the single-machine engine records it:
            # `personas serve` checks it before it places new users' text in this space
            names.append(f"text={(fitted if fitted is not None else worker_encoder(kind)).name}")
        if weight > 0.0:
            pairs = data.interactions.select("user_row", "item_row").distinct()
            behaviour = behaviour_vectors(pairs, data.users, dim=section.behaviour_dim, seed=seed)
            frame = behaviour if frame is None else frame.join(behaviour, on="user_row")
            names.append(f"behaviour=als{section.behaviour_dim}")
        assert frame is not None  # behaviour_weight is in [0, 1]
        if "text_vector" in frame.columns and "behaviour" in frame.columns:
            frame = fuse_columns(frame, "text_vector", "behaviour", 1.0 - weight)
            names.append(f"weight={weight:g}")
        elif "text_vector" in frame.columns:
            frame = frame.withColumn("vector", frame["text_vector"])
        else:
            frame = frame.withColumnRenamed("behaviour", "vector")
        keep = ["user_row", "vector"] + (["text_vector"] if "text_vector" in frame.columns else [])
        return frame.select(*keep), ",".join(names), "text_vector" in frame.columns

    def discover(self, vectors: DataFrame, n_users: int) -> tuple[np.ndarray, DataFrame, np.ndarray, dict[str, Any]]:
        """Centres (size order), assigned (``user_row``, ``group``, ``similarity``), sizes, quality."""
        section = self.config.discover
        if section.method != "kmeans":
            raise ConfigError(
                f"The Spark engine discovers groups with k-means; [discover] method = {section.method!r} "
                "runs on the single-machine engine only."
            )
        kmeans = self.kmeans or SparkKMeansConfig(seed=section.seed)
        sample = sample_vectors(vectors, kmeans.sample_rows, section.seed, n_users)
        quality: dict[str, Any] = {}
        if isinstance(section.k, int):
            k = section.k
        else:  # choose k on the driver sample, by the single-machine rule
            candidates = [c for c in section.candidates if c < len(sample)]
            choice = choose_k(
                sample, candidates, finder=KMeansGroups(k=candidates[0], seed=section.seed), seed=section.seed
            )
            k = choice.k
            quality["choose_k"] = choice.model_dump()
        centres = spark_kmeans(vectors, kmeans.model_copy(update={"k": k}), total=n_users)
        assigned = assign_nearest(vectors, centres).persist()
        counts = {int(r["group"]): int(r["count"]) for r in assigned.groupBy("group").count().collect()}
        # groups numbered by size, largest first (empty ones dropped), as the single-machine finders do
        order = sorted(counts, key=lambda g: (-counts[g], g))
        centres = centres[order]
        assigned.unpersist()
        assigned = assign_nearest(vectors, centres).persist()
        sizes = np.array([counts[g] for g in order], dtype=np.int64)
        sample_labels = np.argmax(sample @ centres.T, axis=1)
        quality["quality"] = group_quality(sample, sample_labels, seed=section.seed).model_dump()
        quality["quality"]["sample_rows"] = len(sample)
        return centres, assigned, sizes, quality

    # ------------------------------------------------------------------------------------------ run
    def run(self, *, vectors: DataFrame | None = None) -> SparkResult:
        with tempfile.TemporaryDirectory(prefix="personas-spark-") as tmp:
            return self._run(vectors, Path(tmp))

    def _run(self, vectors: DataFrame | None, tmp: Path) -> SparkResult:
        stage = self._clock.stage
        spark = self.spark or spark_session(self.config.master)
        configs = self.config.recommend.model_configs()
        on_driver = driver_models(configs)
        if self.config.discover.hierarchy:
            self.console.print(
                "[yellow]Note:[/] "
                + escape(
                    "the Spark engine finds one level of personas; [discover] hierarchy = true (the coarse level) "
                    'runs on engine = "local".'
                ),
                highlight=False,
            )
        with stage("load data"):
            data = self.load(spark)
            # before the long stages: a run whose driver-side models would not fit the driver stops here
            behaviour_dim = self.config.encode.behaviour_dim
            check_driver_fit(
                configs,
                self.config.driver_memory_gb,
                data.n_users,
                data.n_items,
                data.n_interactions,
                vector_dim=TEXT_DIM + behaviour_dim,
            )
        with stage("profile texts"):
            texts = build_profiles_sql(data, self.config.profiles).persist()
            texts.count()
        with stage("encode"):
            frame, encoder_name, with_text = self.encode(data, texts, vectors)
            frame = frame.persist()
            frame.count()
        with stage("discover groups"):
            centres, assigned, sizes, quality = self.discover(frame.select("user_row", "vector"), data.n_users)
        with stage("describe personas"):
            personas = describe_groups_spark(data, texts, assigned, sizes, DescribeConfig())
        with stage("fit recommenders"):
            labels_frame = to_pandas(assigned.select("user_row", "group"))
            labels = np.full(data.n_users, -1, dtype=np.int64)
            labels[labels_frame["user_row"].to_numpy(np.int64)] = labels_frame["group"].to_numpy(np.int64)
            arrays = self.driver_arrays(frame, data.n_users, labels, len(sizes), with_text, tmp)
            seen = seen_items(data)
            models = fit_spark_models(
                {name: c for name, c in configs.items() if name not in on_driver},
                data,
                seen,
                labels,
                assigned.select("user_row", "group"),
                len(sizes),
            )
            if on_driver:
                models.update(self.fit_on_driver(spark, on_driver, data, labels, arrays, with_text))
            models = {name: models[name] for name in configs}  # the config's order
        if self.config.evaluate.enabled:
            self.console.print(
                "[yellow]Note:[/] evaluation is not run on the Spark engine; run the single-machine pipeline "
                '(engine = "local") on the data or a sample of it for the metrics table.',
                highlight=False,
            )
        summary = DatasetSummary(data.name, data.n_users, data.n_items, data.n_interactions)
        result = SparkResult(
            config=self.config,
            dataset=summary,
            encoder_name=encoder_name,
            labels=labels,
            centroids=centres,
            personas=personas,
            models=models,
            quality=quality,
            timings=self.timings,
        )
        with stage("write artefacts"):
            self.write(spark, result, data, arrays, seen.user_ids, with_text)
        seen.pairs.unpersist()
        for persisted in (texts, frame, assigned, data.interactions, data.users, data.items):
            persisted.unpersist()
        return result

    def driver_arrays(
        self, frame: DataFrame, n_users: int, labels: np.ndarray, n_groups: int, with_text: bool, tmp: Path
    ) -> dict[str, np.ndarray]:
        """The run folder's per-user arrays, memory-mapped under ``tmp``: vectors.npy, and with text
        text_vectors.npy and text_centroids.npy (the personas' unit mean text vectors, where new users are
        placed)."""
        arrays = {"vectors.npy": stream_vectors(frame, "vector", n_users, tmp)}
        if with_text:
            text_vectors = stream_vectors(frame, "text_vector", n_users, tmp)
            arrays["text_vectors.npy"] = text_vectors
            arrays["text_centroids.npy"] = group_means(text_vectors, labels, n_groups)
        return arrays

    def fit_on_driver(
        self,
        spark: SparkSession,
        configs: dict[str, ComponentConfig],
        data: SparkData,
        labels: np.ndarray,
        arrays: dict[str, np.ndarray],
        with_text: bool,
    ) -> dict[str, Recommender]:
        """The models Spark does not fit, by their single-machine classes on the collected data, with the inputs
        the single-machine pipeline gives them (the items' and the users' side texts encoded on the workers; added
        to ``arrays`` for the run folder)."""
        dataset = collect_dataset(data)
        item_text_vectors = side_vectors = text_vectors = centroids = None
        if with_text:
            kind = spark_text_kind(self.config.encode.kind)
            encoder = DriverFit(spark, kind, self.text_fitted_, self.config.encode.batch_size)
            item_text_vectors = encoder.item_text_vectors(dataset)
            side_vectors = encoder.side_vectors(dataset, self.config.profiles, item_text_vectors.shape[1])
            text_vectors = np.asarray(arrays["text_vectors.npy"])
            centroids = np.asarray(arrays["text_centroids.npy"])
            # kept in the run folder as the single-machine engine keeps them (the models' inputs, on record)
            arrays["item_text_vectors.npy"] = item_text_vectors
            arrays["side_vectors.npy"] = side_vectors
        # BLAS threads as the single-machine pipeline sets them ([threads]): same numbers, same rankings
        with threadpool_limits(limits=self.config.threads):
            return fit_on_driver(
                configs,
                dataset,
                labels,
                text_vectors=text_vectors,
                centroids=centroids,
                item_text_vectors=item_text_vectors,
                side_vectors=side_vectors,
            )

    def write(
        self,
        spark: SparkSession,
        result: SparkResult,
        data: SparkData,
        arrays: dict[str, np.ndarray],
        user_ids: np.ndarray,
        with_text: bool,
    ) -> None:
        from sklearn.decomposition import PCA

        config = self.config
        vectors = arrays["vectors.npy"]
        rng = np.random.default_rng(config.discover.seed)
        fit_rows = np.sort(rng.choice(len(vectors), min(len(vectors), 20_000), replace=False))
        pca = PCA(n_components=2, random_state=config.discover.seed).fit(np.asarray(vectors[fit_rows], np.float64))
        xy = np.vstack(
            [pca.transform(np.asarray(vectors[s : s + 65536], np.float64)) for s in range(0, len(vectors), 65536)]
        )
        users = pd.DataFrame({"user_id": user_ids, "persona": result.labels, "x": xy[:, 0], "y": xy[:, 1]})
        items = to_pandas(data.items.select("item_row", "item_id", "title").orderBy("item_row"))
        item_frame = pd.DataFrame(
            {"item_id": items["item_id"].astype(str), "title": items["title"].fillna("").astype(str)}
        )
        files: dict[str, bytes | str] = {
            "personas.json": personas_to_json(result.personas),
            "quality.json": json.dumps(result.quality, indent=2, default=float),
        }
        if config.output.report:
            shown = users.sample(n=min(len(users), _REPORT_USERS), random_state=config.discover.seed)
            files["report.html"] = render_report(
                title=f"personas: {data.name}",
                subtitle=(
                    f"{data.n_users:,} users, {data.n_items:,} items, {data.n_interactions:,} interactions; "
                    f"vectors: {result.encoder_name}; {len(result.personas)} personas (Spark k-means, "
                    f"seed {config.discover.seed}, master {config.master})"
                ),
                users=shown,
                personas=result.personas,
                choice=None,
                quality=result.quality.get("quality", {}),
                metrics_markdown="",
                metrics=None,
                per_persona=None,
                timings=self.timings,
            )
        manifest = {
            "config": config.model_dump(mode="json"),
            "engine": {"name": "spark", "master": config.master, "spark_version": spark.version},
            "dataset": {
                "name": data.name,
                "users": data.n_users,
                "items": data.n_items,
                "interactions": data.n_interactions,
            },
            "encoder": {
                "name": result.encoder_name,
                "kind": spark_text_kind(config.encode.kind),
                "behaviour_weight": (  # "auto" runs as 0.5 on Spark (see encode)
                    0.5 if isinstance(config.encode.behaviour_weight, str) else config.encode.behaviour_weight
                ),
                "text_space": "text_vectors.npy" if with_text else None,
            },
            "seeds": {"discover": config.discover.seed},
            "n_personas": len(result.personas),
            "timings": dict(self.timings),
        }
        write_run(
            config.output.dir,
            files=files,
            frames={"users.parquet": users, "items.parquet": item_frame},
            arrays=arrays,
            models=result.models,
            manifest=manifest,
        )


def stream_vectors(frame: DataFrame, column: str, n_rows: int, folder: Path) -> np.ndarray:
    """The ``column`` vectors in user-row order as a memory-mapped .npy under ``folder``: Spark writes them as
    Parquet parts, the driver copies one record batch at a time (bounded memory whatever the number of users)."""
    import pyarrow.parquet as pq

    parts = folder / f"{column}.parquet"
    frame.select("user_row", column).write.mode("overwrite").parquet(str(parts))
    out: np.ndarray | None = None
    for path in sorted(parts.glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=65536):
            rows = batch.column(0).to_numpy()
            values = batch.column(1)
            flat = values.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
            if len(rows) == 0:
                continue
            block = flat.reshape(len(rows), -1)
            if out is None:
                out = np.lib.format.open_memmap(
                    folder / f"{column}.npy", mode="w+", dtype=np.float32, shape=(n_rows, block.shape[1])
                )
            out[rows] = block
    if out is None:
        raise ConfigError(f"No {column} was computed: the data has no users.")
    return out


def group_means(vectors: np.ndarray, labels: np.ndarray, n_groups: int, block: int = 65536) -> np.ndarray:
    """Unit mean vector of each group, reading ``vectors`` block by block."""
    sums = np.zeros((n_groups, vectors.shape[1]), dtype=np.float64)
    for start in range(0, len(vectors), block):
        part = labels[start : start + block]
        keep = part >= 0
        np.add.at(sums, part[keep], np.asarray(vectors[start : start + block], np.float64)[keep])
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.where(norms > 0, norms, 1.0)).astype(np.float32)
