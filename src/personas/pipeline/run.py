"""The main job: data -> profile texts -> vectors -> groups -> personas -> recommenders -> metrics -> artefacts.

Every stage is timed and shown on the console, and its result is kept as it finishes (:class:`RunWriter`, in
a temporary sibling of the run folder). The run folder appears complete at the very end; if a stage fails
(or Ctrl-C), the finished stages appear as a run folder marked incomplete, with the error and the command that
resumes it (``Pipeline(config, resume=True)``, ``personas run CONFIG --resume``), which reuses every finished
stage whose inputs (data fingerprint and config sections) are unchanged. A finished run is never replaced by an
incomplete one: that goes to ``<folder>.incomplete`` beside it.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markup import escape
from threadpoolctl import threadpool_limits

from personas.config import Settings, as_kind, get_settings, registry
from personas.data import (
    Dataset,
    LanguageReport,
    ProfileConfig,
    build_profiles,
    clean_dataset,
    detect_language,
    item_documents,
    load_builtin,
    load_dataset,
)
from personas.data.hints import hint_style
from personas.describe import (
    NameFidelity,
    Persona,
    describe_groups,
    name_fidelity,
    personas_from_json,
    personas_to_json,
)
from personas.discover import (
    GroupingReport,
    GroupingWarning,
    Hierarchy,
    KChoice,
    StabilityCheck,
    WeightChoice,
    centroids_of,
    choose_behaviour_weight,
    choose_coarse_k,
    choose_k,
    choose_top_down_k,
    coarse_refits,
    group_quality,
    group_stability,
    grouping_report,
    make_finder,
    nest,
    refits,
    top_down,
    top_down_refits,
)
from personas.encode import (
    BehaviourEncoder,
    Encoder,
    FusionEncoder,
    ProjectionHead,
    TunedEncoder,
    check_language,
    fitted_text_encoder,
    fuse,
    is_english_only,
    make_encoder,
    text_kind_for,
    tune_head,
)
from personas.errors import ConfigError, DataError
from personas.evaluate import Experiment, ExperimentResult, ModelRun
from personas.evaluate.feasibility import protocol_check
from personas.evaluate.fine_k import FineKChoice, choose_fine_k, validation_split
from personas.pipeline.artefact import COARSE_TEXT_CENTROIDS, RunWriter, read_manifest
from personas.pipeline.config import EncodeSection, PipelineConfig
from personas.pipeline.report import map_2d, render_report
from personas.recommend import Recommender

__all__ = ["Pipeline", "PipelineResult", "evaluate_fix"]

#: The stages whose results are kept and can be reused on resume, with the config sections each one reads
#: (besides everything the stages before it read).
_STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "encode": ("profiles", "encode", "discover.seed"),
    "discover groups": ("discover",),
    "describe personas": (),
    "fit recommenders": ("recommend",),
    "evaluate": ("evaluate",),
}


def _drop_default_tree(dump: dict[str, Any]) -> None:
    """A config dump without ``[discover] tree`` when it is the default, so that a bottom-up run's manifest and
    stage keys are what they were before top-down trees existed."""
    if dump.get("discover", {}).get("tree") == "bottom-up":
        dump["discover"].pop("tree")


def evaluate_fix(fix: dict[str, Any]) -> str:
    """A setting that makes evaluation run, as the config file spells it: ``[evaluate] protocol = "cold-users"``."""
    return "[evaluate] " + ", ".join(f"{key} = {json.dumps(value)}" for key, value in fix.items())


#: The folder of the projection head in a tuned run (``[encode] tune = true``).
HEAD_DIR = "encoder_head"
#: The coarse persona cards of a two-level run (``[discover] hierarchy = true``); personas.json holds the fine.
COARSE_PERSONAS = "coarse_personas.json"


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
    #: (label, result) of every split of the protocol (few-shot has one per number of revealed items).
    experiments: list[tuple[str, ExperimentResult]] = field(default_factory=list)
    #: Whether evaluation ran, was skipped (and why, and what to set) or was disabled.
    evaluation: dict[str, Any] = field(default_factory=dict)
    #: Stages taken from an earlier run folder by ``resume``.
    reused: list[str] = field(default_factory=list)
    weight_choice: WeightChoice | None = None  # how behaviour_weight = "auto" was decided
    #: [discover] hierarchy = true: each user's coarse persona, and the coarse cards (``personas`` are the fine
    #: ones, each with its ``parent``); empty in a one-level run.
    coarse_labels: np.ndarray | None = None
    coarse_personas: list[Persona] = field(default_factory=list)
    #: How well the personas' names pick out their members in the users' text space (None: no text space).
    name_fidelity: NameFidelity | None = None


class Pipeline:
    """Runs the configured stages. ``settings`` (cache folder) and ``console`` are injectable for tests.

    ``resume``: reuse the finished stages of the run folder (or of ``<folder>.incomplete``) whose inputs are
    unchanged. ``command``: how the user resumes, printed and kept in an incomplete run's manifest.
    """

    def __init__(
        self,
        config: PipelineConfig,
        *,
        settings: Settings | None = None,
        console: Console | None = None,
        resume: bool = False,
        command: str | None = None,
    ) -> None:
        self.config = config
        self.settings = settings or get_settings()
        self.console = console or Console(stderr=True)
        self.resume = resume
        self.command = command or "Pipeline(config, resume=True).run()"
        self.current_stage: str | None = None
        self.timings: dict[str, float] = {}
        self.text_vectors_: np.ndarray | None = None
        self.text_centroids_: np.ndarray | None = None
        self.item_text_vectors_: np.ndarray | None = None
        self.side_vectors_: np.ndarray | None = None
        self.text_encoder_: Any | None = None  # the fitted encoder of the users' texts (None: behaviour only)
        self.behaviour_vectors_: np.ndarray | None = None  # the behaviour part of fused vectors (None: not fused)
        self.head_: ProjectionHead | None = None  # the text space's projection head ([encode] tune = true)
        self.tune_evidence_: dict[str, Any] | None = None
        self.language_: LanguageReport | None = None  # the corpus language, when the encoder choice needed it
        self.encode_kind_: str | None = None  # [encode] kind after "auto" was resolved
        self.notes_: dict[str, Any] = {}  # cleaning and language facts for the manifest
        self.grouping_: GroupingReport | None = None  # the group finder's check of its own result
        self.weight_choice_: WeightChoice | None = None  # behaviour_weight = "auto": chosen once per run
        self.fine_choice_: FineKChoice | None = None  # hierarchy: how many fine personas (validation NDCG)
        self.coarse_choice_: KChoice | None = None  # hierarchy: how many coarse personas (a cut of their tree)
        self.tree_: Hierarchy | None = None
        self.stability_: StabilityCheck | None = None  # each persona's stability across seeds

    @contextmanager
    def stage(self, name: str, note: str = "") -> Iterator[None]:
        start = time.perf_counter()
        self.current_stage = name
        self.console.print(f"[bold]▶ {name}[/]{note}", highlight=False)
        yield
        seconds = time.perf_counter() - start
        self.timings[name] = seconds
        self.console.print(f"[green]✓ {name}[/] [dim]{seconds:.1f} s[/]", highlight=False)

    # ------------------------------------------------------------------------------------------ stages
    def load(self) -> Dataset:
        """The configured data, its texts cleaned by ``[data.clean]``."""
        dataset, report = clean_dataset(self._load(), self.config.data.clean)
        if report.changed:
            self.console.print(f"[dim]{report.summary()}[/]", highlight=False)
        self.notes_["cleaning"] = {"texts": report.texts, "changed": report.changed, "steps": dict(report.steps)}
        return dataset

    def _load(self) -> Dataset:
        data = self.config.data
        if data.dataset is not None:
            return load_builtin(data.dataset, settings=self.settings, echo=lambda m: self.console.print(m))
        if data.interactions is None:  # unreachable: the config validator requires one source
            raise AssertionError("no data source")
        with hint_style("toml"):  # the data's errors name [data] keys, as the user wrote them
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
            self.console.print(f"[yellow]Warning:[/] {escape(warning)}", highlight=False)
        return dataset

    def encode(self, dataset: Dataset, texts: list[str]) -> tuple[np.ndarray, str, np.ndarray | None]:
        """User vectors: text, behaviour, or both fused with ``behaviour_weight``; plus the text part alone
        (None without text): new users arrive with text and no behaviour, so they are placed in text space."""
        section = self.encode_section(dataset, texts)
        if section.behaviour_weight == "auto":
            return self._encode_auto(dataset, texts, section)
        encoder = make_encoder(
            section.encoder_config(seed=self.config.discover.seed, cache_dir=self.settings.home / "embeddings")
        )
        text_vectors = None
        self.text_encoder_ = None
        self.behaviour_vectors_ = None
        if isinstance(encoder, BehaviourEncoder):
            vectors: np.ndarray = encoder.fit(dataset).vectors_
            names = [f"behaviour=svd{encoder.dim_}"]
        elif isinstance(encoder, FusionEncoder):
            encoder.fit(dataset, texts=texts, show_progress=True, batch_size=section.batch_size)
            vectors, text_vectors = encoder.vectors_, encoder.text_vectors_
            self.text_encoder_ = encoder.text_encoder
            self.behaviour_vectors_ = encoder.behaviour_encoder_.vectors_
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

    def behaviour_weight(self) -> float:
        """The behaviour weight this run fuses with: the configured number, or the one "auto" chose."""
        weight = self.config.encode.behaviour_weight
        if self.weight_choice_ is not None:
            return float(self.weight_choice_.weight)
        return 0.5 if isinstance(weight, str) else float(weight)

    def encode_section(self, dataset: Dataset, texts: list[str]) -> EncodeSection:
        """``[encode]`` with kind "auto" resolved by the corpus language (detected once per run, on the users' own
        words, or the profile texts when they wrote none); an English-only model on another language warns."""
        section = self.config.encode
        weight = section.behaviour_weight
        if isinstance(weight, int | float) and weight >= 1.0:  # behaviour only: no text is encoded
            return section
        if self.language_ is None and (section.kind == "auto" or is_english_only(section.text_config())):
            own = [t for t in build_profiles(dataset, ProfileConfig(parts=("text", "reviews"))) if t]
            self.language_ = detect_language(own or texts)
            self.notes_["language"] = self.language_.as_dict()
        if section.kind == "auto":
            kind = text_kind_for(self.language_) if self.language_ is not None else "minilm"
            if self.encode_kind_ is None:
                name = self.language_.name if self.language_ is not None else None
                self.console.print(f"[dim]language: {name or 'unknown'} -> encoder {kind}[/]", highlight=False)
            section = section.model_copy(update={"kind": kind})
        if self.language_ is not None and "language_warning" not in self.notes_:
            message = check_language(section.text_config(), self.language_)
            if message:
                self.notes_["language_warning"] = message
                self.console.print(f"[yellow]Warning:[/] {message}", highlight=False)
        self.encode_kind_ = section.kind
        return section

    def _encode_auto(
        self, dataset: Dataset, texts: list[str], section: EncodeSection
    ) -> tuple[np.ndarray, str, np.ndarray]:
        """:meth:`encode` with ``behaviour_weight = "auto"``: text and behaviour vectors, the weight measured on
        them (:func:`~personas.discover.choose_behaviour_weight`) the first time, then fused. Later calls (the
        evaluation's train split) reuse the chosen weight, so the groups it checks are made the same way."""
        seed = self.config.discover.seed
        text_encoder = fitted_text_encoder(make_encoder(section.text_config(self.settings.home / "embeddings")), texts)
        text_vectors = np.ascontiguousarray(
            text_encoder.encode(texts, batch_size=section.batch_size, show_progress=True), dtype=np.float32
        )
        self.text_encoder_ = text_encoder
        behaviour = BehaviourEncoder(section.behaviour_config(seed)).fit(dataset)
        if self.weight_choice_ is None:
            k = self.config.discover.k if isinstance(self.config.discover.k, int) else 8
            self.weight_choice_ = choice = choose_behaviour_weight(text_vectors, behaviour.vectors_, k=k, seed=seed)
            figures = ", ".join(f"{s.weight:g}: {s.stability:.2f}" for s in choice.scores)
            self.console.print(
                f"behaviour_weight = {choice.weight:g} (auto; group stability by weight {figures})", highlight=False
            )
        weight = self.weight_choice_.weight
        names = [f"text={text_encoder.name}"]
        self.behaviour_vectors_ = None if weight <= 0 else behaviour.vectors_
        if weight <= 0:
            return text_vectors, ",".join([*names, "weight=0(auto)"]), text_vectors
        vectors = fuse(text_vectors, behaviour.vectors_, text_weight=1.0 - weight)
        names += [f"behaviour=svd{behaviour.dim_}", f"weight={weight:g}(auto)"]
        return np.ascontiguousarray(vectors, dtype=np.float32), ",".join(names), text_vectors

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

    def tune(self, dataset: Dataset, vectors: np.ndarray, encoder_name: str) -> tuple[np.ndarray, str]:
        """``[encode] tune = true``: train the projection head on the run's interactions (users' profile texts and
        items' texts against the items taken), then move the whole text space through it: users' text vectors,
        items' text vectors, the encoder of new users' texts, and the user vectors (re-fused with behaviour when
        the run fuses)."""
        if self.text_vectors_ is None or self.item_text_vectors_ is None or self.text_encoder_ is None:
            raise ConfigError("[encode] tune = true needs the run's text vectors; this run encoded no text.")
        head, evidence = tune_head(
            self.text_vectors_,
            self.item_text_vectors_,
            dataset.matrix("binary"),
            self.config.encode.tune_options,
            seed=self.config.discover.seed,
            show_progress=True,
        )
        head.meta["base_encoder"] = self.text_encoder_.name
        self.head_, self.tune_evidence_ = head, evidence
        self.text_vectors_ = head.apply(self.text_vectors_)
        self.item_text_vectors_ = head.apply(self.item_text_vectors_)
        if self.side_vectors_ is not None:  # side texts live in the items' text space: they move with it
            self.side_vectors_ = head.apply(self.side_vectors_)
        self.text_encoder_ = TunedEncoder(self.text_encoder_, head)
        if self.behaviour_vectors_ is not None:
            weight = 1.0 - self.behaviour_weight()
            vectors = fuse(self.text_vectors_, self.behaviour_vectors_, text_weight=weight)
        else:
            vectors = self.text_vectors_
        held = evidence["held_out_loss"]
        self.console.print(
            f"  head: {evidence['pairs']['train']:,} pairs, best epoch {evidence['best_epoch']} of "
            f"{evidence['epochs']}, held-out loss {held[0]:.3f} -> {held[evidence['best_epoch']]:.3f} "
            f"({evidence['seconds']:.1f} s on {evidence['device']})",
            highlight=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32), f"{encoder_name},head={head.fingerprint()}"

    def _finder_config(self, k: int) -> Any:
        return self.config.discover.finder_config(k)

    def discover(self, vectors: np.ndarray, dataset: Dataset | None = None) -> tuple[np.ndarray, KChoice | None]:
        """The (fine) groups. ``k = "auto"``: chosen by silhouette and stability, or with ``hierarchy = true``
        and a ``dataset``, by recommendation quality on a validation hold-out (:meth:`choose_fine_k`)."""
        section = self.config.discover
        if section.hierarchy and section.tree == "top-down":
            return self._discover_top_down(vectors, dataset), None
        choice = None
        k = section.k if isinstance(section.k, int) else 8
        if section.chooses_k:
            candidates = [c for c in section.candidates if c < len(vectors)]
            if section.hierarchy and dataset is not None:
                self.fine_choice_ = self.choose_fine_k(dataset, candidates)
            if self.fine_choice_ is not None:
                k = self.fine_choice_.k
            else:
                choice = choose_k(
                    vectors, candidates, finder=make_finder(self._finder_config(candidates[0])), seed=section.seed
                )
                k = choice.k
        with warnings.catch_warnings(record=True) as caught:  # said on the console, kept in the manifest
            warnings.simplefilter("always", GroupingWarning)
            finder = make_finder(self._finder_config(k)).fit(vectors)
        for warning in caught:
            if issubclass(warning.category, GroupingWarning):
                self.console.print(f"[yellow]Warning:[/] {warning.message}", highlight=False)
            else:
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        self.grouping_ = finder.report_
        return np.asarray(finder.labels_, dtype=np.int64), choice

    def _text_space(self) -> np.ndarray:
        if self.text_vectors_ is None:
            raise ConfigError(
                '[discover] tree = "top-down" finds the coarse personas in the text space, but this run has no text '
                'vectors (behaviour only). Set tree = "bottom-up", or lower [encode] behaviour_weight below 1.'
            )
        return self.text_vectors_

    def _discover_top_down(self, vectors: np.ndarray, dataset: Dataset | None) -> np.ndarray:
        """``tree = "top-down"``: the coarse k first (k-means of the text vectors, chosen for readability), then
        the fine k (validation NDCG of the top-down fine groups, as :meth:`choose_fine_k`), then the tree
        (:func:`~personas.discover.top_down`). Returns the fine labels; the tree is ``tree_``."""
        section = self.config.discover
        text = self._text_space()
        finder = make_finder(self._finder_config(2))
        self.coarse_choice_ = choose_top_down_k(
            text, finder, section.coarse_candidates, n_runs=section.stability_runs, seed=section.seed
        )
        n_coarse = self.coarse_choice_.k
        k = section.k if isinstance(section.k, int) else 8
        if section.chooses_k:
            # a fine k below the coarse k would leave coarse groups without a fine one
            candidates = [c for c in section.candidates if n_coarse <= c < len(vectors)] or [n_coarse]
            if dataset is not None:
                self.fine_choice_ = self.choose_fine_k(dataset, candidates, n_coarse=n_coarse)
            if self.fine_choice_ is not None:
                k = self.fine_choice_.k
            else:
                k = choose_k(
                    vectors, candidates, finder=make_finder(self._finder_config(candidates[0])), seed=section.seed
                ).k
        self.tree_ = top_down(vectors, text, n_coarse, max(k, n_coarse), finder)
        self.grouping_ = grouping_report(self.tree_.fine_labels, owner="top-down tree")
        return self.tree_.fine_labels

    def _top_down_labels(self, vectors: np.ndarray, text: np.ndarray | None, n_coarse: int, k: int) -> np.ndarray:
        """The fine labels of a top-down tree over other users (the validation and evaluation refits)."""
        if text is None:
            raise ConfigError('[discover] tree = "top-down": the training split encoded no text vectors.')
        finder = make_finder(self._finder_config(2))
        return top_down(vectors, text, n_coarse, max(k, n_coarse), finder).fine_labels

    def choose_fine_k(
        self, dataset: Dataset, candidates: list[int], *, n_coarse: int | None = None
    ) -> FineKChoice | None:
        """The number of fine personas by validation NDCG@10 of group-popular: the last 20% of each history
        (users with 5+ interactions) held out, groups found on vectors of the rest (re-encoded, so no held-out
        item reaches them). None when no user has enough history (the silhouette rule decides instead). With
        ``n_coarse`` (a top-down tree) the groups are the fine groups of a top-down tree with that coarse k."""
        train, relevant = validation_split(dataset, fraction=0.2, min_interactions=5)
        if relevant.nnz == 0:
            self.console.print(
                "[yellow]Warning:[/] no user has 5+ interactions to hold out; fine k by silhouette instead.",
                highlight=False,
            )
            return None
        kept = (self.text_encoder_, self.behaviour_vectors_)  # encode() resets them; the run's own are kept
        try:
            train_vectors, _, train_text = self.encode(train, build_profiles(train, self.config.profiles))
        finally:
            self.text_encoder_, self.behaviour_vectors_ = kept

        def labels_for(k: int) -> np.ndarray:
            with warnings.catch_warnings():  # a candidate's own check; the chosen k is checked when fitted
                warnings.simplefilter("ignore", GroupingWarning)
                if n_coarse is not None:
                    return self._top_down_labels(train_vectors, train_text, n_coarse, k)
                return np.asarray(make_finder(self._finder_config(k)).fit(train_vectors).labels_, dtype=np.int64)

        users = int((np.diff(relevant.indptr) > 0).sum())
        choice = choose_fine_k(
            train,
            relevant,
            labels_for,
            candidates,
            protocol=f"last 20% of each history held out ({users:,} users with 5+ interactions); groups found on "
            "vectors of the rest"
            + ("" if n_coarse is None else f" (top-down tree, {n_coarse} coarse groups of their text vectors)"),
        )
        figures = ", ".join(f"{s.k}: {s.ndcg:.4f}" for s in choice.scores)
        self.console.print(f"fine k = {choice.k} (validation NDCG@10 by k: {figures})", highlight=False)
        return choice

    def levels(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        """Each group's stability (refits with other seeds on subsamples) and, with ``hierarchy = true``, the
        coarse level: the fine groups' Ward tree cut at the most readable k (``coarse_candidates``)."""
        section = self.config.discover
        k = int(labels.max()) + 1 if (labels >= 0).any() else 0
        others: list[np.ndarray] = []
        fraction = 0.8
        if section.hierarchy and section.tree == "top-down":
            self._top_down_levels(vectors, labels, fraction)
            return
        if section.stability_runs and k >= 1:
            finder = make_finder(self._finder_config(max(k, 1)))
            others = refits(finder, vectors, n_runs=section.stability_runs, fraction=fraction, seed=section.seed)
        self.tree_ = None
        self.coarse_choice_ = None
        coarse_scores = None
        if section.hierarchy and k >= 1:
            self.coarse_choice_ = choose_coarse_k(
                vectors, labels, section.coarse_candidates, refit_labels=others, seed=section.seed
            )
            self.tree_ = nest(vectors, labels, self.coarse_choice_.k)
            if others:
                coarse_scores = group_stability(
                    self.tree_.coarse_labels, coarse_refits(vectors, others, self.coarse_choice_.k)
                ).tolist()
        self.stability_ = None
        if others:
            self.stability_ = StabilityCheck(
                method=f"{len(others)} refits ({section.method}, seeds {section.seed + 1}..{section.seed + len(others)}"
                f", each on a random {fraction:.0%} of users, all users labelled by assign); a group's stability is "
                "the mean Jaccard overlap of its members with the best-matching refit group"
                + ("; coarse groups: the same cut of each refit's tree" if coarse_scores is not None else ""),
                n_runs=len(others),
                fraction=fraction,
                threshold=section.stability_threshold,
                fine=group_stability(labels, others).tolist(),
                coarse=coarse_scores,
            )

    def _top_down_levels(self, vectors: np.ndarray, labels: np.ndarray, fraction: float) -> None:
        """:meth:`levels` of a top-down tree (found by :meth:`discover`): each group's stability from refits of
        the same top-down procedure with other seeds on subsamples (:func:`~personas.discover.top_down_refits`)."""
        section = self.config.discover
        tree = self.tree_
        if tree is None or tree.kind != "top-down" or not np.array_equal(tree.fine_labels, labels):
            raise ConfigError(
                'Pipeline.levels: with tree = "top-down" the labels must be the fine groups that discover() found; '
                "call discover() first and pass its labels."
            )
        self.stability_ = None
        if not section.stability_runs:
            return
        trees = top_down_refits(
            make_finder(self._finder_config(2)),
            vectors,
            self._text_space(),
            tree.n_coarse,
            tree.n_fine,
            n_runs=section.stability_runs,
            fraction=fraction,
            seed=section.seed,
        )
        self.stability_ = StabilityCheck(
            method=f"{len(trees)} refits of the top-down tree ({section.method}, seeds {section.seed + 1}.."
            f"{section.seed + len(trees)}, each on a random {fraction:.0%} of users; all users labelled by the "
            "refit's nearest coarse centroid in the text space, then the nearest of its fine groups); a group's "
            "stability is the mean Jaccard overlap of its members with the best-matching refit group",
            n_runs=len(trees),
            fraction=fraction,
            threshold=section.stability_threshold,
            fine=group_stability(labels, [t.fine_labels for t in trees]).tolist(),
            coarse=group_stability(tree.coarse_labels, [t.coarse_labels for t in trees]).tolist(),
        )

    def _levels_summary(self) -> dict[str, Any]:
        """What quality.json and the manifest keep of the levels: how each k was chosen, the tree, stability."""
        out: dict[str, Any] = {}
        if self.tree_ is not None and self.coarse_choice_ is not None:
            out["hierarchy"] = {
                "fine": {
                    "k": self.tree_.n_fine,
                    "chosen_by": self.fine_choice_.model_dump() if self.fine_choice_ is not None else "[discover] k",
                },
                "coarse": {"k": self.tree_.n_coarse, "chosen_by": self.coarse_choice_.model_dump()},
                "parent": self.tree_.parent.tolist(),
                # only in top-down runs, so a bottom-up run's manifest is what it was
                **({"tree": self.tree_.kind} if self.tree_.kind != "bottom-up" else {}),
            }
        if self.stability_ is not None:
            out["stability"] = self.stability_.model_dump()
        return out

    def _restore_levels(self, saved: dict[str, Any], users: pd.DataFrame, vectors: np.ndarray) -> None:
        """The levels of a reused discover stage, back from quality.json and users.parquet."""
        tree = saved.get("hierarchy")
        if tree is not None and "coarse_persona" in users:
            fine = users["persona"].to_numpy(np.int64)
            coarse = users["coarse_persona"].to_numpy(np.int64)
            parent = np.asarray(tree["parent"], dtype=np.int64)
            n_fine, n_coarse = len(parent), int(parent.max()) + 1
            text = self.text_vectors_ if tree.get("tree") == "top-down" else None
            self.tree_ = Hierarchy(
                fine_labels=fine,
                coarse_labels=coarse,
                parent=parent,
                fine_centroids=centroids_of(vectors, fine, n_fine),
                coarse_centroids=centroids_of(vectors, coarse, n_coarse),
                kind="top-down" if tree.get("tree") == "top-down" else "bottom-up",
                coarse_text_centroids=None if text is None else centroids_of(text, coarse, n_coarse),
                fine_text_centroids=None if text is None else centroids_of(text, fine, n_fine),
            )
            self.coarse_choice_ = KChoice.model_validate(tree["coarse"]["chosen_by"])
            fine_by = tree["fine"]["chosen_by"]
            self.fine_choice_ = FineKChoice.model_validate(fine_by) if isinstance(fine_by, dict) else None
        stability = saved.get("stability")
        self.stability_ = None if stability is None else StabilityCheck.model_validate(stability)

    def annotate(self, personas: list[Persona], coarse: list[Persona]) -> tuple[list[Persona], list[Persona]]:
        """The cards with their place in the tree and their stability."""
        check = self.stability_

        def marks(scores: list[float] | None, group: int) -> dict[str, Any]:
            if check is None or scores is None or group >= len(scores):
                return {}
            return {"stability": round(scores[group], 4), "unstable": scores[group] < check.threshold}

        tree = self.tree_
        fine_out = [
            p.model_copy(
                update={
                    **marks(check.fine if check else None, p.group),
                    **({"level": "fine", "parent": int(tree.parent[p.group])} if tree is not None else {}),
                }
            )
            for p in personas
        ]
        coarse_out = [
            p.model_copy(
                update={
                    **marks(check.coarse if check else None, p.group),
                    "level": "coarse",
                    "children": tree.children(p.group) if tree is not None else [],
                }
            )
            for p in coarse
        ]
        return fine_out, coarse_out

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

    def _stage_keys(self, dataset: Dataset) -> dict[str, str]:
        """Each kept stage's key: a hash of the data's fingerprint and of every config value it and the stages
        before it read. A resumed run reuses a stage only when its key is unchanged."""
        config = self.config.model_dump(mode="json")
        _drop_default_tree(config)  # a bottom-up run keeps the keys it had before the option existed
        chain, keys = dataset.fingerprint(), {}
        for name, inputs in _STAGE_INPUTS.items():
            values = []
            for path in inputs:
                value: Any = config
                for part in path.split("."):
                    value = value[part]
                values.append(value)
            chain = hashlib.sha256((chain + json.dumps(values, sort_keys=True, default=str)).encode()).hexdigest()
            keys[name] = chain
        return keys

    def _resume_source(self) -> tuple[Any, dict[str, Any]] | None:
        """The verified earlier run folder to resume from and its manifest (None: nothing to resume)."""
        folder = self.config.output.dir
        for candidate in (folder.with_name(f"{folder.name}.incomplete"), folder):
            if (candidate / "manifest.json").is_file():
                try:
                    return candidate, read_manifest(candidate)
                except DataError as exc:
                    raise DataError(f"Cannot resume: {exc} Run without --resume to start over.") from None
        self.console.print(
            f"[yellow]Nothing to resume in {escape(str(folder))}: running every stage.[/]", highlight=False
        )
        return None

    def _run(self) -> PipelineResult:
        source = self._resume_source() if self.resume else None
        writer = RunWriter(self.config.output.dir)
        self.current_stage = None
        models: dict[str, Recommender] = {}
        manifest: dict[str, Any] = {"config": self._config_dump()}
        try:
            result = self._stages(writer, source, manifest, models)
        except BaseException as exc:
            if not writer.stages:
                writer.discard()
                raise
            failed = self.current_stage or "?"
            error = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
            kept_models = writer.stages.get("fit recommenders", {}).get("models", [])
            where = writer.keep_incomplete(
                {**manifest, "timings": dict(self.timings)},
                kept_models,
                failed=failed,
                error=error,
                resume=self.command,
            )
            self.console.print(
                f"[red]✗ {escape(failed)} failed.[/] "
                + escape(
                    f"The finished stages ({', '.join(writer.stages)}) are kept in {where}, marked incomplete. "
                    f"Fix the problem, then resume with: {self.command}"
                ),
                highlight=False,
            )
            raise
        return result

    def _reusable(self, source: tuple[Any, dict[str, Any]] | None, name: str, key: str) -> dict[str, Any] | None:
        if source is None:
            return None
        entry = source[1].get("stages", {}).get(name)
        return entry if isinstance(entry, dict) and entry.get("key") == key else None

    def _stages(
        self,
        writer: RunWriter,
        source: tuple[Any, dict[str, Any]] | None,
        manifest: dict[str, Any],
        models: dict[str, Recommender],
    ) -> PipelineResult:
        reused: list[str] = []
        from_folder = f" [dim](reused from {escape(str(source[0]))})[/]" if source is not None else ""

        def reusable(name: str) -> tuple[Any, dict[str, Any]] | None:
            """(earlier folder, stage entry) when stage ``name`` can be reused; its files are taken over."""
            entry = self._reusable(source, name, keys[name])
            if entry is None or source is None:
                return None
            writer.reuse(source[0], entry["files"])
            writer.stage_done(
                name, keys[name], entry["files"], **{k: v for k, v in entry.items() if k not in ("key", "files")}
            )
            reused.append(name)
            return source[0], entry

        def note(name: str) -> str:
            return from_folder if self._reusable(source, name, keys[name]) is not None else ""

        with self.stage("load data"):
            dataset = self.load()
            keys = self._stage_keys(dataset)
            items = dataset.items
            titles = items["title"] if "title" in items else items["item_id"]
            item_frame = pd.DataFrame({"item_id": items["item_id"].astype(str), "title": titles.fillna("").astype(str)})
            writer.stage_done("load data", dataset.fingerprint(), writer.write(frames={"items.parquet": item_frame}))
            manifest["dataset"] = {
                "name": dataset.name,
                "fingerprint": dataset.fingerprint(),
                "users": dataset.n_users,
                "items": dataset.n_items,
                "interactions": dataset.n_interactions,
            }
            manifest["seeds"] = {"discover": self.config.discover.seed, "split": self.config.discover.seed}
            manifest["cleaning"] = self.notes_.get("cleaning")
        with self.stage("profile texts"):
            texts = build_profiles(dataset, self.config.profiles)
        # With [encode] tune = true the kept "encode" stage is the tuned text space (head included): its key
        # covers the whole [encode] section, tuning options too.
        with self.stage("encode", note("encode")):
            if (encoded := reusable("encode")) is not None:
                folder, entry = encoded
                vectors = np.load(folder / "vectors.npy", allow_pickle=False)
                encoder_name = str(entry["encoder"])
                optional = {
                    name: np.load(folder / f"{name}.npy", allow_pickle=False)
                    if (folder / f"{name}.npy").is_file()
                    else None
                    for name in ("text_vectors", "item_text_vectors", "side_vectors")
                }
                self.text_vectors_ = optional["text_vectors"]
                self.item_text_vectors_ = optional["item_text_vectors"]
                self.side_vectors_ = optional["side_vectors"]
                self.encode_kind_ = entry.get("kind")
                choice = entry.get("weight_choice")
                self.weight_choice_ = None if choice is None else WeightChoice.model_validate(choice)
                self.notes_.update(entry.get("language") or {})
                if entry.get("head"):
                    self.head_ = ProjectionHead.load(folder / str(entry["head"]))
                    self.tune_evidence_ = dict(entry.get("tuning") or {})
            else:
                vectors, encoder_name, self.text_vectors_ = self.encode(dataset, texts)
                self.item_text_vectors_ = self.encode_items(dataset)
                self.side_vectors_ = self.encode_sides(dataset)
        # the corpus language and the encoder "auto" chose (kept with the encode stage, so a resume says it too)
        language = {k: v for k, v in self.notes_.items() if k.startswith("language")}
        if encoded is None:
            if self.config.encode.tune:
                with self.stage("tune text space"):
                    vectors, encoder_name = self.tune(dataset, vectors, encoder_name)
            arrays = {"vectors.npy": vectors}
            for name, array in (
                ("text_vectors", self.text_vectors_),
                ("item_text_vectors", self.item_text_vectors_),
                ("side_vectors", self.side_vectors_),
            ):
                if array is not None:
                    arrays[f"{name}.npy"] = array
            files: dict[str, bytes | str] = {}
            tuned: dict[str, Any] = {}
            if self.head_ is not None:
                arrays.update({f"{HEAD_DIR}/{name}": array for name, array in self.head_.to_arrays().items()})
                files[f"{HEAD_DIR}/head.json"] = self.head_.to_json()
                tuned = {"head": HEAD_DIR, "tuning": self._tuning_summary()}
            written = writer.write(files=files, arrays=arrays)
            writer.stage_done(
                "encode",
                keys["encode"],
                written,
                encoder=encoder_name,
                kind=self.encode_kind_,
                language=language,
                weight_choice=None if self.weight_choice_ is None else self.weight_choice_.model_dump(),
                **tuned,
            )
        manifest["encoder"] = {
            "name": encoder_name,
            "kind": self.encode_kind_ or self.config.encode.kind,
            "behaviour_weight": self.behaviour_weight(),
            # behaviour_weight = "auto": the weight chosen, the rule and every candidate's figures
            "behaviour_weight_choice": None if self.weight_choice_ is None else self.weight_choice_.model_dump(),
            "text_space": "text_vectors.npy" if self.text_vectors_ is not None else None,
            **language,
            # only in tuned runs, so an untuned run's manifest is what it was
            **({"head": HEAD_DIR, "tuning": self._tuning_summary()} if self.head_ is not None else {}),
        }
        with self.stage("discover groups", note("discover groups")):
            if (earlier := reusable("discover groups")) is not None:
                folder = earlier[0]
                users = pd.read_parquet(folder / "users.parquet")
                if list(users["user_id"]) != [str(u) for u in dataset.user_vocab.ids]:
                    raise DataError(f"{folder}/users.parquet lists other users than the data; run without --resume.")
                labels = users["persona"].to_numpy(np.int64)
                saved = json.loads((folder / "quality.json").read_text(encoding="utf-8"))
                quality = saved["quality"]
                choice = KChoice.model_validate(saved["choose_k"]) if saved.get("choose_k") else None
                path = folder / "text_centroids.npy"
                self.text_centroids_ = np.load(path, allow_pickle=False) if path.is_file() else None
                grouping = quality.get("grouping")
                self.grouping_ = None if grouping is None else GroupingReport.model_validate(grouping)
                self._restore_levels(saved, users, vectors)
            else:
                labels, choice = self.discover(vectors, dataset)
                self.levels(vectors, labels)
                # Unit mean text vector of each persona: where new users (text, no behaviour) are placed.
                self.text_centroids_ = (
                    None
                    if self.text_vectors_ is None
                    else centroids_of(self.text_vectors_, labels, int(labels.max()) + 1)
                )
                quality = group_quality(vectors, labels, seed=self.config.discover.seed).model_dump()
                if self.grouping_ is not None:
                    quality["grouping"] = self.grouping_.model_dump()
                xy = map_2d(vectors, seed=self.config.discover.seed)
                users = pd.DataFrame(
                    {"user_id": dataset.user_vocab.ids.astype(str), "persona": labels, "x": xy[:, 0], "y": xy[:, 1]}
                )
                if self.tree_ is not None:  # the coarse persona of each user: their fine persona's parent
                    users.insert(2, "coarse_persona", self.tree_.coarse_labels)
                saved = {"quality": quality, **self._levels_summary()}
                if choice is not None:
                    saved["choose_k"] = choice.model_dump()
                arrays = {} if self.text_centroids_ is None else {"text_centroids.npy": self.text_centroids_}
                if self.tree_ is not None and self.tree_.coarse_text_centroids is not None:
                    # top-down: new users' text finds their coarse persona where the coarse personas were found
                    arrays[COARSE_TEXT_CENTROIDS] = self.tree_.coarse_text_centroids
                written = writer.write(
                    files={"quality.json": json.dumps(saved, indent=2, default=float)},
                    frames={"users.parquet": users},
                    arrays=arrays,
                )
                writer.stage_done("discover groups", keys["discover groups"], written)
            manifest["grouping"] = None if self.grouping_ is None else self.grouping_.model_dump()
            manifest.update(self._levels_summary())
        coarse_personas: list[Persona] = []
        with self.stage("describe personas", note("describe personas")):
            fidelity = None
            if (earlier := reusable("describe personas")) is not None:
                personas = personas_from_json(earlier[0] / "personas.json")
                if (earlier[0] / COARSE_PERSONAS).is_file():
                    coarse_personas = personas_from_json(earlier[0] / COARSE_PERSONAS)
                saved_fidelity = earlier[1].get("name_fidelity")
                fidelity = (
                    NameFidelity.model_validate(saved_fidelity)
                    if saved_fidelity is not None
                    else self.name_fidelity(texts, personas, labels)  # a run folder from before the measure
                )
            else:
                personas = self.describe(dataset, texts, vectors, labels)
                if self.tree_ is not None:
                    coarse_personas = self.describe(dataset, texts, vectors, self.tree_.coarse_labels)
                personas, coarse_personas = self.annotate(personas, coarse_personas)
                files = {"personas.json": personas_to_json(personas)}
                if coarse_personas:
                    files[COARSE_PERSONAS] = personas_to_json(coarse_personas)
                written = writer.write(files=files)
                fidelity = self.name_fidelity(texts, personas, labels)
                writer.stage_done(
                    "describe personas",
                    keys["describe personas"],
                    written,
                    name_fidelity=None if fidelity is None else fidelity.model_dump(mode="json"),
                )
            manifest["n_personas"] = len(personas)
            if coarse_personas:
                manifest["n_coarse_personas"] = len(coarse_personas)
            manifest["name_fidelity"] = None if fidelity is None else fidelity.model_dump(mode="json")
        with self.stage("fit recommenders", note("fit recommenders")):
            if (earlier := reusable("fit recommenders")) is not None:
                names = list(self.config.recommend.model_configs())
                models.update({name: Recommender.load(earlier[0] / "models" / name) for name in names})
            else:
                models.update(self.fit_models(dataset, labels))
                written = writer.write(models=models)
                writer.stage_done("fit recommenders", keys["fit recommenders"], written, models=sorted(models))
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
            reused=reused,
            weight_choice=self.weight_choice_,
            coarse_labels=None if self.tree_ is None else self.tree_.coarse_labels,
            coarse_personas=coarse_personas,
            name_fidelity=fidelity,
        )
        result.evaluation = {"status": "disabled"}
        if self.config.evaluate.enabled:
            with self.stage("evaluate", note("evaluate")):
                if (earlier := reusable("evaluate")) is not None:
                    folder, entry = earlier
                    result.evaluation = dict(entry["evaluation"])
                    if result.evaluation.get("status") == "ran":
                        self._load_experiments(result, folder)
                else:
                    self.evaluate(result)
                    files, frames = self._experiment_files(result)
                    written = writer.write(files=files, frames=frames)
                    writer.stage_done("evaluate", keys["evaluate"], written, evaluation=result.evaluation)
        manifest["evaluation"] = result.evaluation
        with self.stage("write artefacts"):
            self.write(result, writer, manifest)
        return result

    def _experiment_files(self, result: PipelineResult) -> tuple[dict[str, bytes | str], dict[str, pd.DataFrame]]:
        """metrics.json (one protocol's result, or ``{"splits": {label: result}}`` for several), metrics.md and
        the per-user values (to resume without evaluating again)."""
        if not result.experiments:
            return {}, {}
        if len(result.experiments) == 1:
            payload = result.experiments[0][1].to_json()
        else:
            payload = json.dumps(
                {"splits": {label: json.loads(e.to_json()) for label, e in result.experiments}}, indent=2
            )
        frames = []
        for label, experiment in result.experiments:
            frame = experiment.per_user_frame()
            frame.insert(0, "split", label)
            frames.append(frame)
        per_user = pd.concat(frames, ignore_index=True)
        per_user["user_id"] = per_user["user_id"].astype(str)
        return (
            {"metrics.json": payload, "metrics.md": result.metrics_markdown},
            {"metrics_per_user.parquet": per_user},
        )

    def _load_experiments(self, result: PipelineResult, folder: Any) -> None:
        """The evaluation of an earlier run, back from metrics.json and metrics_per_user.parquet."""
        saved = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        per_user = pd.read_parquet(folder / "metrics_per_user.parquet")
        labels = list(dict.fromkeys(per_user["split"]))
        splits = saved["splits"] if "splits" in saved else {labels[0]: saved}
        for label, data in splits.items():
            rows = per_user[per_user["split"] == label]
            runs = []
            for item in data["results"]:
                mine = rows[rows["model"] == item["model"]]
                values = {c: mine[c].to_numpy() for c in mine.columns if c not in ("split", "model", "user_id")}
                runs.append(
                    ModelRun(
                        name=item["model"],
                        model=item["class"],
                        config=item["config"],
                        tuned=item["tuned"],
                        trials=item["trials"],
                        overall=item["metrics"],
                        per_user={k: v for k, v in values.items() if not np.isnan(v).all()},
                        fit_seconds=item["fit_seconds"],
                        rank_seconds=item["rank_seconds"],
                        tune_seconds=item["tune_seconds"],
                    )
                )
            first = rows[rows["model"] == runs[0].name] if runs else rows
            experiment = ExperimentResult(
                protocol=data["protocol"],
                runs=runs,
                users=list(first["user_id"]),
                headline=data["headline"],
                ours=data["ours"],
                notes=data["notes"],
            )
            result.experiments.append((label, experiment))
        self._tables(result)

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

    def write(self, result: PipelineResult, writer: RunWriter, manifest: dict[str, Any]) -> None:
        """The report, then the manifest; the run folder appears complete."""
        if self.config.output.report:
            dataset = result.dataset
            users = pd.read_parquet(writer.tmp / "users.parquet")
            html = render_report(
                title=f"personas: {dataset.name}",
                subtitle=(
                    f"{dataset.n_users:,} users, {dataset.n_items:,} items, {dataset.n_interactions:,} interactions; "
                    f"vectors: {result.encoder_name}; {len(result.personas)} personas "
                    f"({self.config.discover.method}, seed {self.config.discover.seed})"
                ),
                users=users,
                personas=result.personas,
                coarse_personas=result.coarse_personas,
                levels=self._levels_summary(),
                choice=result.k_choice,
                quality=result.quality,
                metrics_markdown=result.metrics_markdown,
                metrics=result.metrics,
                per_persona=self.per_persona(result),
                timings=self.timings,
                fidelity=result.name_fidelity,
            )
            writer.write(files={"report.html": html})
        writer.finish({**manifest, "timings": dict(self.timings), "reused_stages": result.reused}, result.models)

    def _config_dump(self) -> dict[str, Any]:
        """The config as JSON; an untuned run leaves the tuning keys out, so its manifest is what it was."""
        dump = self.config.model_dump(mode="json")
        if not self.config.encode.tune:
            for key in ("tune", "tune_options"):
                dump["encode"].pop(key, None)
        _drop_default_tree(dump)
        return dump

    def _tuning_summary(self) -> dict[str, Any]:
        evidence = dict(self.tune_evidence_ or {})
        return {key: evidence[key] for key in ("pairs", "epochs", "best_epoch", "held_out_loss", "seconds", "device")}

    def describe(self, dataset: Dataset, texts: list[str], vectors: np.ndarray, labels: np.ndarray) -> list[Persona]:
        # the run's text encoder and the users' text vectors: names whose facts point at the members there
        encoder = None
        if self.text_vectors_ is not None:
            encoder = self.text_encoder_ if self.text_encoder_ is not None else self._rebuilt_text_encoder(texts)
        return describe_groups(
            labels,
            texts=texts,
            vectors=vectors,
            dataset=dataset,
            encoder=encoder,
            text_vectors=self.text_vectors_ if encoder is not None else None,
        )

    def name_fidelity(self, texts: list[str], personas: list[Persona], labels: np.ndarray) -> NameFidelity | None:
        """How well each persona's name (the generated one where there is one) picks out its members: the names
        are encoded by the run's text encoder and compared with the users' profile text vectors, the text part
        of fused vectors (:func:`~personas.describe.name_fidelity`). None when the run has no text space
        (behaviour only) or no persona."""
        if self.text_vectors_ is None or not personas:
            return None
        encoder = self.text_encoder_ if self.text_encoder_ is not None else self._rebuilt_text_encoder(texts)
        fused = 0.0 < self.behaviour_weight() < 1.0
        users = "profile text vectors" + (" (the text part of the fused user vectors)" if fused else "")
        if self.head_ is not None:
            users += ", through the tuned projection head"
        return name_fidelity(
            [p.display_name for p in personas], labels, self.text_vectors_, encoder=encoder, users=users
        )

    def _rebuilt_text_encoder(self, texts: list[str]) -> Encoder:
        """The run's text encoder again, for a resumed run whose encode stage was read from disk (its encoder
        is not kept there): the same kind, fitted on the same texts, through the same head."""
        section = self.config.encode
        if self.encode_kind_ is not None:
            section = section.model_copy(update={"kind": self.encode_kind_})
        encoder = fitted_text_encoder(make_encoder(section.text_config(self.settings.home / "embeddings")), texts)
        return encoder if self.head_ is None else TunedEncoder(encoder, self.head_)

    def groups_for(self, train: Dataset, k: int) -> np.ndarray:
        """Groups recomputed from a train split only (profiles, vectors, k-means at the chosen k), so the
        evaluation never sees held-out interactions through the groups."""
        texts = build_profiles(train, self.config.profiles)
        vectors, _, text = self.encode(train, texts)
        with warnings.catch_warnings():  # the grouping's check was said once, at discover
            warnings.simplefilter("ignore", GroupingWarning)
            if self.tree_ is not None and self.tree_.kind == "top-down":  # the same tree, train users only
                return self._top_down_labels(vectors, text, self.tree_.n_coarse, k)
            return np.asarray(make_finder(self._finder_config(k)).fit(vectors).labels_, dtype=np.int64)

    def evaluate(self, result: PipelineResult) -> None:
        """The ``[evaluate]`` protocol on the run's models, baselines in the same run. Data it cannot run on
        (too few interactions per user, or no test item ever seen in train) skips it with a warning that says
        why and what to set in the config file; the run still completes."""
        section = self.config.evaluate
        seed = self.config.discover.seed
        check = protocol_check(
            result.dataset,
            section.protocol,
            seed=seed,
            test_fraction=section.test_fraction,
            min_interactions=section.min_interactions,
            n_shots=section.n_shots,
        )
        if not check.ok or check.unlearnable is not None:
            reason = check.reason or check.unlearnable
            fixes = " or ".join(evaluate_fix(fix) for fix in check.fixes)
            self.console.print(
                "[yellow]Warning:[/] "
                + escape(f"evaluation skipped: {reason}. To evaluate this data, set {fixes} in the config file."),
                highlight=False,
            )
            result.evaluation = {
                "status": "skipped",
                "protocol": section.protocol,
                "reason": reason,
                "fixes": check.fixes,
            }
            return
        k = int(result.labels.max()) + 1
        configs = self.config.recommend.model_configs()
        # On warm users the router is its warm model, already in the table; it is scored on new users.
        names = [n for n in dict.fromkeys(["most-popular", *configs]) if n != "router" or section.protocol != "warm"]
        for label, split in check.splits:
            experiment = Experiment(
                split,
                {
                    name: registry.build(configs[name] if name in configs else as_kind(name), Recommender)
                    for name in names
                },
                [f"{metric}@{cut}" for cut in section.k for metric in ("Recall", "NDCG")]
                + ["HitRate@10", "Coverage@10"],
                groups=lambda train: self.groups_for(train, k),
                profiles=lambda train: build_profiles(train, self.config.profiles),
                ours=[n for n in names if n in ("group-popular", "hybrid", "router")],
                seed=seed,
            )
            result.experiments.append((label, experiment.run()))
        result.evaluation = {"status": "ran", "protocol": section.protocol, "splits": [lb for lb, _ in check.splits]}
        self._tables(result)

    def _tables(self, result: PipelineResult) -> None:
        """The metrics table (rows "model", or "model (split)" for several splits) and the markdown report."""
        several = len(result.experiments) > 1
        tables = []
        for label, experiment in result.experiments:
            table = experiment.table()
            if several:
                table.index = [f"{name} ({label})" for name in table.index]
            tables.append(table)
        result.metrics = pd.concat(tables) if tables else None
        result.metrics_markdown = "\n".join(
            e.to_markdown(command="personas run CONFIG.toml") for _, e in result.experiments
        )
        result.experiment = result.experiments[0][1] if result.experiments else None
