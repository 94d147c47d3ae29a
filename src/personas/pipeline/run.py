"""The main job: data -> profile texts -> vectors -> groups -> personas -> recommenders -> metrics -> artefacts.

Every stage is timed and shown on the console. The artefact folder is written to a temporary sibling and
renamed into place at the very end, so an interrupted run (Ctrl-C) leaves the previous folder intact.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from threadpoolctl import threadpool_limits

from personas.config import Settings, as_kind, get_settings, registry
from personas.data import Dataset, build_profiles, item_documents, load_builtin, load_dataset
from personas.describe import Persona, describe_groups, personas_to_json
from personas.discover import (
    KChoice,
    centroids_of,
    choose_k,
    group_quality,
    make_finder,
)
from personas.encode import BehaviourEncoder, FusionEncoder, fitted_text_encoder, make_encoder
from personas.errors import ConfigError
from personas.evaluate import Experiment, ExperimentResult, TemporalSplit
from personas.pipeline.artefact import write_run
from personas.pipeline.config import PipelineConfig
from personas.pipeline.report import map_2d, render_report
from personas.recommend import Recommender

__all__ = ["Pipeline", "PipelineResult"]


@dataclass
class PipelineResult:
    """Everything a run produced, in memory (the artefact folder holds the same)."""

    config: PipelineConfig
    dataset: Dataset
    texts: list[str]
    vectors: np.ndarray
    encoder_name: str
    labels: np.ndarray
    k_choice: KChoice | None
    quality: dict[str, Any]
    personas: list[Persona]
    models: dict[str, Recommender]
    metrics: pd.DataFrame | None = None
    metrics_markdown: str = ""
    experiment: ExperimentResult | None = None
    timings: dict[str, float] = field(default_factory=dict)


class Pipeline:
    """Runs the configured stages. ``settings`` (cache folder) and ``console`` are injectable for tests."""

    def __init__(
        self, config: PipelineConfig, *, settings: Settings | None = None, console: Console | None = None
    ) -> None:
        self.config = config
        self.settings = settings or get_settings()
        self.console = console or Console(stderr=True)
        self.timings: dict[str, float] = {}
        self.text_vectors_: np.ndarray | None = None
        self.text_centroids_: np.ndarray | None = None
        self.item_text_vectors_: np.ndarray | None = None
        self.side_vectors_: np.ndarray | None = None
        self.text_encoder_: Any | None = None  # the fitted encoder of the users' texts (None: behaviour only)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        self.console.print(f"[bold]▶ {name}[/]", highlight=False)
        yield
        seconds = time.perf_counter() - start
        self.timings[name] = seconds
        self.console.print(f"[green]✓ {name}[/] [dim]{seconds:.1f} s[/]", highlight=False)

    # ------------------------------------------------------------------------------------------ stages
    def load(self) -> Dataset:
        data = self.config.data
        if data.dataset is not None:
            return load_builtin(data.dataset, settings=self.settings, echo=lambda m: self.console.print(m))
        if data.interactions is None:  # unreachable: the config validator requires one source
            raise AssertionError("no data source")
        dataset, report = load_dataset(
            data.interactions,
            users=data.users,
            items=data.items,
            tags=data.tags,
            columns={str(kind): mapping for kind, mapping in data.columns.items()},
            unknown_ids=data.unknown_ids,
            delimiter=data.delimiter,
            encoding=data.encoding,
        )
        for warning in report.warnings:
            self.console.print(f"[yellow]Warning:[/] {warning}", highlight=False)
        return dataset

    def encode(self, dataset: Dataset, texts: list[str]) -> tuple[np.ndarray, str, np.ndarray | None]:
        """User vectors: text, behaviour, or both fused with ``behaviour_weight``; plus the text part alone
        (None without text): new users arrive with text and no behaviour, so they are placed in text space."""
        section = self.config.encode
        encoder = make_encoder(self.config.encoder_config(cache_dir=self.settings.home / "embeddings"))
        text_vectors = None
        self.text_encoder_ = None
        if isinstance(encoder, BehaviourEncoder):
            vectors: np.ndarray = encoder.fit(dataset).vectors_
            names = [f"behaviour=svd{encoder.dim_}"]
        elif isinstance(encoder, FusionEncoder):
            encoder.fit(dataset, texts=texts, show_progress=True, batch_size=section.batch_size)
            vectors, text_vectors = encoder.vectors_, encoder.text_vectors_
            self.text_encoder_ = encoder.text_encoder
            names = [
                f"text={encoder.text_encoder.name}",
                f"behaviour=svd{encoder.behaviour_encoder_.dim_}",
                f"weight={section.behaviour_weight:g}",
            ]
        else:
            text_encoder = fitted_text_encoder(encoder, texts)
            vectors = text_vectors = text_encoder.encode(texts, batch_size=section.batch_size, show_progress=True)
            self.text_encoder_ = text_encoder
            names = [f"text={text_encoder.name}"]
        text_part = None if text_vectors is None else np.ascontiguousarray(text_vectors, dtype=np.float32)
        return np.ascontiguousarray(vectors, dtype=np.float32), ",".join(names), text_part

    def encode_items(self, dataset: Dataset) -> np.ndarray | None:
        """The items' own texts (:func:`~personas.data.item_documents`) in the users' text space, by the encoder
        that made the users' text vectors: a new user's words are then compared with every item. None when the
        run has no text."""
        if self.text_encoder_ is None:
            return None
        # Reviews say what an item is where it has no title or description (one review per product); the run's
        # evaluation does not read these vectors, so no held-out review reaches it.
        documents = item_documents(dataset, max_reviews=3)
        vectors = self.text_encoder_.encode(documents, batch_size=self.config.encode.batch_size, show_progress=True)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_sides(self, dataset: Dataset) -> np.ndarray | None:
        """Each user's side text alone (own words, reviews, tags, demographics; not their items) in the items'
        text space, zero rows for users without one: the router learns from them how much a new user's text
        counts when it reads like a profile rather than a wish. None when the run has no text encoder."""
        if self.text_encoder_ is None or self.item_text_vectors_ is None:
            return None
        parts = tuple(p for p in self.config.profiles.parts if p != "behaviour")
        texts = build_profiles(dataset, self.config.profiles.model_copy(update={"parts": parts})) if parts else []
        rows = [r for r, text in enumerate(texts) if text]
        vectors = np.zeros((dataset.n_users, self.item_text_vectors_.shape[1]), dtype=np.float32)
        if rows:
            encoded = self.text_encoder_.encode(
                [texts[r] for r in rows], batch_size=self.config.encode.batch_size, show_progress=True
            )
            vectors[rows] = np.asarray(encoded, dtype=np.float32)
        return vectors

    def _finder_config(self, k: int) -> Any:
        return self.config.discover.finder_config(k)

    def discover(self, vectors: np.ndarray) -> tuple[np.ndarray, KChoice | None]:
        section = self.config.discover
        choice = None
        k = section.k if isinstance(section.k, int) else 8
        if section.k == "auto" and section.method in ("kmeans", "agglomerative"):
            candidates = [c for c in section.candidates if c < len(vectors)]
            choice = choose_k(
                vectors, candidates, finder=make_finder(self._finder_config(candidates[0])), seed=section.seed
            )
            k = choice.k
        finder = make_finder(self._finder_config(k)).fit(vectors)
        return np.asarray(finder.labels_, dtype=np.int64), choice

    def fit_models(self, dataset: Dataset, labels: np.ndarray) -> dict[str, Recommender]:
        groups = np.where(labels >= 0, labels, -1)
        models: dict[str, Recommender] = {}
        for name, config in self.config.recommend.model_configs().items():
            # Every model gets the same inputs and reads what it uses: the router places new users by their
            # text vector at the nearest persona's text centroid.
            models[name] = registry.build(config, Recommender).fit(
                dataset,
                groups=groups,
                user_vectors=self.text_vectors_,
                centroids=self.text_centroids_,
                item_text_vectors=self.item_text_vectors_,
                side_vectors=self.side_vectors_,
            )
        return models

    # ------------------------------------------------------------------------------------------ run
    def run(self) -> PipelineResult:
        if self.config.engine != "local":
            # personas.spark sits above this package (it reuses it), so the CLI dispatches, not this class
            raise ConfigError(
                f"Pipeline runs the 'local' engine; this config has engine = {self.config.engine!r}. Use "
                "personas.spark.SparkPipeline(config).run() or `personas run CONFIG --engine spark`."
            )
        if self.config.threads is None:
            return self._run()
        with threadpool_limits(limits=self.config.threads):
            return self._run()

    def _run(self) -> PipelineResult:
        with self.stage("load data"):
            dataset = self.load()
        with self.stage("profile texts"):
            texts = build_profiles(dataset, self.config.profiles)
        with self.stage("encode"):
            vectors, encoder_name, self.text_vectors_ = self.encode(dataset, texts)
            self.item_text_vectors_ = self.encode_items(dataset)
            self.side_vectors_ = self.encode_sides(dataset)
        with self.stage("discover groups"):
            labels, choice = self.discover(vectors)
            # Unit mean text vector of each persona: where new users (text, no behaviour) are placed.
            self.text_centroids_ = (
                None if self.text_vectors_ is None else centroids_of(self.text_vectors_, labels, int(labels.max()) + 1)
            )
            quality = group_quality(vectors, labels, seed=self.config.discover.seed).model_dump()
        with self.stage("describe personas"):
            personas = self.describe(dataset, texts, vectors, labels)
        with self.stage("fit recommenders"):
            models = self.fit_models(dataset, labels)
        result = PipelineResult(
            config=self.config,
            dataset=dataset,
            texts=texts,
            vectors=vectors,
            encoder_name=encoder_name,
            labels=labels,
            k_choice=choice,
            quality=quality,
            personas=personas,
            models=models,
            timings=self.timings,
        )
        if self.config.evaluate.enabled:
            with self.stage("evaluate"):
                self.evaluate(result)
        with self.stage("write artefacts"):
            self.write(result)
        return result

    def per_persona(self, result: PipelineResult) -> pd.DataFrame | None:
        """Mean NDCG@10 of each evaluated model within each persona (test users only)."""
        if result.experiment is None:
            return None
        frame = result.experiment.per_user_frame()
        metric = "NDCG@10" if "NDCG@10" in frame else next(c for c in frame.columns if c not in ("model", "user_id"))
        persona_of = dict(zip(result.dataset.user_vocab.ids, result.labels, strict=True))
        frame["persona"] = frame["user_id"].map(persona_of)
        table = frame.pivot_table(index="persona", columns="model", values=metric, aggfunc="mean")
        table.insert(0, "test users", frame[frame["model"] == frame["model"].iloc[0]].groupby("persona").size())
        return table

    def write(self, result: PipelineResult) -> None:
        dataset = result.dataset
        xy = map_2d(result.vectors, seed=self.config.discover.seed)
        users = pd.DataFrame(
            {"user_id": dataset.user_vocab.ids.astype(str), "persona": result.labels, "x": xy[:, 0], "y": xy[:, 1]}
        )
        items = dataset.items
        titles = items["title"] if "title" in items else items["item_id"]
        item_frame = pd.DataFrame({"item_id": items["item_id"].astype(str), "title": titles.fillna("").astype(str)})
        quality: dict[str, Any] = {"quality": result.quality}
        if result.k_choice is not None:
            quality["choose_k"] = result.k_choice.model_dump()
        files: dict[str, bytes | str] = {
            "personas.json": personas_to_json(result.personas),
            "quality.json": json.dumps(quality, indent=2, default=float),
        }
        if result.experiment is not None:
            files["metrics.json"] = result.experiment.to_json()
            files["metrics.md"] = result.metrics_markdown
        per_persona = self.per_persona(result)
        if self.config.output.report:
            files["report.html"] = render_report(
                title=f"personas: {dataset.name}",
                subtitle=(
                    f"{dataset.n_users:,} users, {dataset.n_items:,} items, {dataset.n_interactions:,} interactions; "
                    f"vectors: {result.encoder_name}; {len(result.personas)} personas "
                    f"({self.config.discover.method}, seed {self.config.discover.seed})"
                ),
                users=users,
                personas=result.personas,
                choice=result.k_choice,
                quality=result.quality,
                metrics_markdown=result.metrics_markdown,
                metrics=result.metrics,
                per_persona=per_persona,
                timings=self.timings,
            )
        arrays = {"vectors.npy": result.vectors}
        if self.text_vectors_ is not None and self.text_centroids_ is not None:
            arrays["text_vectors.npy"] = self.text_vectors_
            arrays["text_centroids.npy"] = self.text_centroids_
        if self.item_text_vectors_ is not None:
            arrays["item_text_vectors.npy"] = self.item_text_vectors_
        manifest = {
            "config": self.config.model_dump(mode="json"),
            "dataset": {
                "name": dataset.name,
                "fingerprint": dataset.fingerprint(),
                "users": dataset.n_users,
                "items": dataset.n_items,
                "interactions": dataset.n_interactions,
            },
            "encoder": {
                "name": result.encoder_name,
                "kind": self.config.encode.kind,
                "behaviour_weight": self.config.encode.behaviour_weight,
                "text_space": "text_vectors.npy" if self.text_vectors_ is not None else None,
            },
            "seeds": {"discover": self.config.discover.seed, "split": self.config.discover.seed},
            "n_personas": len(result.personas),
            "timings": dict(self.timings),
        }
        write_run(
            self.config.output.dir,
            files=files,
            frames={"users.parquet": users, "items.parquet": item_frame},
            arrays=arrays,
            models=result.models,
            manifest=manifest,
        )

    def describe(self, dataset: Dataset, texts: list[str], vectors: np.ndarray, labels: np.ndarray) -> list[Persona]:
        return describe_groups(labels, texts=texts, vectors=vectors, dataset=dataset)

    def groups_for(self, train: Dataset, k: int) -> np.ndarray:
        """Groups recomputed from a train split only (profiles, vectors, k-means at the chosen k), so the
        evaluation never sees held-out interactions through the groups."""
        texts = build_profiles(train, self.config.profiles)
        vectors, _, _ = self.encode(train, texts)
        return np.asarray(make_finder(self._finder_config(k)).fit(vectors).labels_, dtype=np.int64)

    def evaluate(self, result: PipelineResult) -> None:
        """Warm protocol: per-user temporal split, full ranking, baselines in the same run."""
        split = TemporalSplit(seed=self.config.discover.seed).split(result.dataset)
        k = int(result.labels.max()) + 1
        # The router serves new users; on warm users it is its warm model, already in the table.
        configs = self.config.recommend.model_configs()
        names = [n for n in dict.fromkeys(["most-popular", *configs]) if n != "router"]
        experiment = Experiment(
            split,
            {name: registry.build(configs[name] if name in configs else as_kind(name), Recommender) for name in names},
            [f"{metric}@{cut}" for cut in self.config.evaluate.k for metric in ("Recall", "NDCG")]
            + ["HitRate@10", "Coverage@10"],
            groups=lambda train: self.groups_for(train, k),
            ours=[n for n in names if n in ("group-popular", "hybrid")],
            seed=self.config.discover.seed,
        )
        outcome = experiment.run()
        result.metrics = outcome.table()
        result.metrics_markdown = outcome.to_markdown(command="personas run CONFIG.toml")
        result.experiment = outcome
