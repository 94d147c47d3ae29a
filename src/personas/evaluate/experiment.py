"""``Experiment(split, models, metrics).run()``: fit, rank, score and compare on one screen.

Every model is fitted on ``split.train`` (with group labels computed from train only, when a group source
is given), then ranks items for the test users over the full candidate set: all items, or the held-out
items for the cold-item protocol. Train items of each user are masked out of the ranking before the cut,
and score ties are broken by one fixed random order shared by all models (never by item id, which tracks
popularity on MovieLens). Metrics are computed per user and kept, so two models can be compared with a
paired test.

Models given as :class:`Tuned` are tuned first: each point of their grid is fitted on
``split.validation()`` (carved from train) and scored with the tuning metric; the best point is refitted
on the whole train split. Test data never takes part in tuning.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from personas.data import Dataset
from personas.errors import ConfigError
from personas.evaluate._memo import DatasetMemo
from personas.evaluate.metrics import Metric, MetricContext, default_metrics, parse_metric
from personas.evaluate.report import ExperimentResult, ModelRun, protocol_header
from personas.evaluate.splits import Split
from personas.recommend.base import Recommender, tie_break_noise, top_n

__all__ = ["Experiment", "GroupSource", "SideInfo", "Tuned", "evaluate_model", "rank_users"]

GroupSource = Callable[[Dataset], np.ndarray]
"""Computes one group label per user row from a train dataset (so groups never see test data)."""


@dataclass
class Tuned:
    """A model to tune on validation: ``factory(**params)`` for each point of ``grid`` (plus ``fixed``)."""

    factory: Callable[..., Recommender]
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def points(self) -> list[dict[str, Any]]:
        keys = list(self.grid)
        return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(self.grid[k] for k in keys))]

    def build(self, params: Mapping[str, Any]) -> Recommender:
        return self.factory(**{**self.fixed, **params})


@dataclass(frozen=True)
class SideInfo:
    """What a model may know about users without train history: profile text and group label per user row."""

    texts: Sequence[str | None] | None = None
    groups: np.ndarray | None = None
    vectors: np.ndarray | None = None  # their texts encoded like the item texts (rows = user rows; 0 = no text)


def _build_profiles(train: Dataset) -> list[str | None]:
    from personas.data import build_profiles

    return list(build_profiles(train))


# Profile texts of a train set, shared by every experiment on it (choosing groups runs nine on one validation).
_default_profiles: DatasetMemo[list[str | None]] = DatasetMemo(_build_profiles)


def _build_side_profiles(train: Dataset) -> list[str | None]:
    from personas.data import ProfileConfig, build_profiles

    parts = tuple(p for p in ProfileConfig().parts if p != "behaviour")
    return list(build_profiles(train, ProfileConfig(parts=parts)))


# Every user's side text alone (what a new user's text is when it is a profile), per train set.
_side_profiles: DatasetMemo[list[str | None]] = DatasetMemo(_build_side_profiles)


def side_text_note(split: Split, side: SideInfo) -> str | None:
    """How many evaluated users have no train history, and how many of those have any side text."""
    has_history = np.diff(split.train.matrix("binary").indptr) > 0
    cold = split.users[~has_history[split.users]]
    if not len(cold):
        return None
    with_text = sum(1 for row in cold if side.texts is not None and side.texts[row])
    return (
        f"{len(cold)} of {len(split.users)} test users have no train history; {with_text} of them have side text "
        "(own text, tags, demographics) for the models that read text, the others only their group (if any)"
    )


def _cold_scores(
    model: Recommender, rows: np.ndarray, side: SideInfo, split: Split, revealed: sp.csr_matrix | None
) -> np.ndarray:
    """Scores for users with no train history, through the model's new-user path: their text and group, and
    (strict few-shot) the items revealed at prediction time."""
    n_items = split.train.n_items
    item_ids = split.train.item_vocab.ids
    out = np.full((len(rows), n_items), -np.inf)
    for j, row in enumerate(rows):
        text = side.texts[row] if side.texts is not None else None
        group = int(side.groups[row]) if side.groups is not None and side.groups[row] >= 0 else None
        history = [str(item_ids[i]) for i in revealed[row].indices] if revealed is not None else None
        vector = None
        if side.vectors is not None and side.vectors.shape[1] and text and model.reads_text_vectors():
            vector = side.vectors[row]
        recs = model.recommend_new(
            text=text or None, vector=vector, group=group, history=history, n=n_items, exclude_seen=False
        )
        ok = recs.ids[0] >= 0
        out[j, recs.ids[0][ok]] = recs.scores[0][ok]
    return out


def rank_users(
    model: Recommender,
    split: Split,
    k: int,
    *,
    seed: int = 0,
    batch_size: int = 256,
    side: SideInfo | None = None,
) -> np.ndarray:
    """Top-k item rows (len(split.users) x k, -1 padded) over the candidates, each user's train items masked.

    Users with train history are scored by ``model.score_rows``; users without any (cold users) by the
    model's new-user path, from ``side`` (their profile text and group label, built from train data) —
    unless the model sets ``uses_side_information`` (it scores every row from the dataset's user table) or
    has no new-user path of its own (its rows are scored as they are).
    """
    train = split.train
    seen = train.matrix("binary")
    revealed = split.revealed.matrix("binary") if split.revealed is not None else None
    # Models that read side information from the dataset tables score every row themselves, and so do models
    # without a new-user path of their own (Random stays random, MostPopular stays popular).
    own_rows = bool(getattr(model, "uses_side_information", False)) or (
        type(model)._score_new is Recommender._score_new
    )
    has_history = (np.diff(seen.indptr) > 0) | own_rows
    side = side or SideInfo()
    noise = tie_break_noise(train.n_items, seed)
    blocked = np.zeros(train.n_items, dtype=bool)
    if split.candidates is not None:
        blocked[:] = True
        blocked[split.candidates] = False
    out = np.empty((len(split.users), k), dtype=np.int64)
    for start in range(0, len(split.users), batch_size):
        rows = split.users[start : start + batch_size]
        warm = has_history[rows]
        scores = np.empty((len(rows), train.n_items))
        if warm.any():
            block = np.asarray(model.score_rows(rows[warm]), dtype=np.float64)
            if block.shape != (int(warm.sum()), train.n_items):
                raise ConfigError(
                    f"{type(model).__name__}.score_rows returned shape {block.shape}; "
                    f"expected ({int(warm.sum())}, {train.n_items})."
                )
            scores[warm] = block
        if (~warm).any():
            scores[~warm] = _cold_scores(model, rows[~warm], side, split, revealed)
        scores[np.isnan(scores)] = -np.inf
        scores += noise
        scores[:, blocked] = -np.inf
        exclude = seen[rows] if revealed is None else seen[rows] + revealed[rows]
        ids, _ = top_n(scores, k, exclude=exclude)
        out[start : start + len(rows)] = ids
    return out


def evaluate_model(
    model: Recommender,
    split: Split,
    metrics: Sequence[Metric],
    *,
    ctx: MetricContext | None = None,
    seed: int = 0,
    side: SideInfo | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, float], float]:
    """Per-user values and overall numbers of each metric, and the seconds spent ranking."""
    ctx = ctx or MetricContext.build(split.train, split.candidates)
    k = max(m.k for m in metrics)
    t0 = time.perf_counter()
    ranked = rank_users(model, split, k, seed=seed, side=side)
    seconds = time.perf_counter() - t0
    truth = split.truth()
    hits = np.zeros(ranked.shape, dtype=bool)
    valid = ranked >= 0
    user_idx = np.broadcast_to(np.arange(len(ranked))[:, None], ranked.shape)
    hits[valid] = np.asarray(truth[user_idx[valid], ranked[valid]]).ravel() > 0
    n_relevant = np.diff(truth.indptr)
    per_user: dict[str, np.ndarray] = {}
    overall: dict[str, float] = {}
    for metric in metrics:
        values = metric.per_user(ranked, hits, n_relevant, ctx)
        if values is not None:
            per_user[metric.name] = values
        overall[metric.name] = metric.overall(ranked, values, ctx)
    return per_user, overall, seconds


class Experiment:
    """Fit every model on ``split.train``, rank for the test users, report metrics with the protocol.

    ``models``: name -> a Recommender (used as is) or a :class:`Tuned` spec. ``groups``: a function from a
    train dataset to group labels, passed to every model's ``fit`` (computed on validation-train for tuning
    and on train for the test run). ``ours``: names of personas' own models, for the headline comparison
    against the best other model. ``tune_metric``: what tuning maximises (default NDCG@10).
    ``profiles``: a function from a train dataset to one profile text per user row (default
    :func:`personas.data.build_profiles`); used only for users without train history, whose text then holds
    only side information (demographics, own text, tags), never their held-out interactions.
    ``text_encoder``: encodes those texts into the space of ``item_text_vectors`` (the items' own texts, one row
    per item, given to every model's ``fit``), so that models reading text vectors can use them; a function of
    the train dataset instead of an array when item texts depend on train (tags a held-out user wrote).
    Text a split gives at prediction time only (``Split.revealed_text``) is added to those users' profiles.
    """

    def __init__(
        self,
        split: Split,
        models: Mapping[str, Recommender | Tuned],
        metrics: Sequence[Metric | str] | None = None,
        *,
        groups: GroupSource | None = None,
        profiles: Callable[[Dataset], Sequence[str | None]] | None = None,
        ours: Sequence[str] = (),
        headline: str = "NDCG@10",
        tune_metric: str = "NDCG@10",
        seed: int = 0,
        progress: bool = False,
        notes: Sequence[str] = (),
        item_text_vectors: np.ndarray | Callable[[Dataset], np.ndarray] | None = None,
        text_encoder: Any | None = None,
    ) -> None:
        self.split = split
        self.models = models
        self.metrics = metrics
        self.groups = groups
        self.profiles = profiles
        self.ours = ours
        self.headline = headline
        self.tune_metric = tune_metric
        self.seed = seed
        self.progress = progress
        self.notes = notes
        self.item_text_vectors = item_text_vectors
        self.text_encoder = text_encoder

    def _metrics(self) -> list[Metric]:
        if self.metrics is None:
            return default_metrics()
        return [parse_metric(m) if isinstance(m, str) else m for m in self.metrics]

    def _validate(self, metrics: list[Metric]) -> None:
        if not self.models:
            raise ConfigError("Experiment needs at least one model; got an empty mapping.")
        names = {m.name for m in metrics}
        if self.headline not in names:
            raise ConfigError(f"The headline metric {self.headline!r} is not among the metrics {sorted(names)}.")
        unknown = [n for n in self.ours if n not in self.models]
        if unknown:
            raise ConfigError(f"'ours' names {unknown} that are not models of this experiment ({list(self.models)}).")

    def _labels(self, train: Dataset) -> np.ndarray | None:
        """Group labels of a train dataset, computed once per dataset (tuning refits many models on one)."""
        if self.groups is None:
            return None
        cache: dict[int, tuple[Dataset, np.ndarray]] = self.__dict__.setdefault("_group_cache", {})
        if id(train) not in cache:
            cache[id(train)] = (train, np.asarray(self.groups(train), dtype=np.int64))
        return cache[id(train)][1]

    def _side(self, split: Split) -> SideInfo:
        """Profile texts and labels for the split's users without train history (none: nothing to build)."""
        has_history = np.diff(split.train.matrix("binary").indptr) > 0
        if has_history[split.users].all():
            return SideInfo()
        texts = list(self.profiles(split.train)) if self.profiles is not None else list(_default_profiles(split.train))
        groups = self._labels(split.train)
        if split.revealed_text is not None:
            # Text given at prediction time only (it is in no train table) joins the train-side profile; the
            # group that train gave these users was placed without it, so they get none (even those left with no
            # text: train placed them by an empty profile, an arbitrary group): models place them.
            for row, extra in split.revealed_text.items():
                texts[row] = ". ".join(t for t in (texts[row], extra) if t)
            if groups is not None:
                groups = groups.copy()
                groups[list(split.revealed_text)] = -1
        vectors = None
        if self.text_encoder is not None:
            rows = [int(r) for r in split.users if not has_history[r] and texts[r]]
            vectors = np.zeros((split.train.n_users, 0))
            if rows:
                encoded = np.asarray(self.text_encoder.encode([texts[r] for r in rows], show_progress=False))
                vectors = np.zeros((split.train.n_users, encoded.shape[1]))
                vectors[rows] = encoded
        return SideInfo(texts=texts, groups=groups, vectors=vectors)

    def _item_vectors(self, train: Dataset) -> np.ndarray | None:
        """The item texts' vectors for a train set (a function of it when the split takes text out of train)."""
        return self.item_text_vectors(train) if callable(self.item_text_vectors) else self.item_text_vectors

    def _side_vectors(self, train: Dataset) -> np.ndarray | None:
        """Every train user's side text (own words, tags, demographics; never their items) encoded like the
        item texts, zero rows for users without one; once per train set. None without a text encoder."""
        items = self._item_vectors(train)
        if self.text_encoder is None or items is None:
            return None
        cache: dict[int, tuple[Dataset, np.ndarray]] = self.__dict__.setdefault("_side_vector_cache", {})
        if id(train) not in cache:
            texts = _side_profiles(train)
            rows = [r for r, text in enumerate(texts) if text]
            vectors = np.zeros((train.n_users, items.shape[1]))
            if rows:
                encoded = self.text_encoder.encode([texts[r] for r in rows], show_progress=False)
                vectors[rows] = np.asarray(encoded, dtype=np.float64)
            cache[id(train)] = (train, vectors)
        return cache[id(train)][1]

    def _fit(self, model: Recommender, train: Dataset) -> float:
        labels = self._labels(train)  # computed once per train set; not part of any model's fit time
        sides = self._side_vectors(train)  # likewise
        t0 = time.perf_counter()
        model.fit(train, groups=labels, item_text_vectors=self._item_vectors(train), side_vectors=sides)
        return time.perf_counter() - t0

    def _tune(self, spec: Tuned, validation: Split) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        metric = parse_metric(self.tune_metric)
        ctx = MetricContext.build(validation.train, validation.candidates)
        side = self._side(validation)
        trials: list[dict[str, Any]] = []
        best: tuple[float, dict[str, Any]] | None = None
        for params in spec.points():
            model = spec.build(params)
            self._fit(model, validation.train)
            _, overall, _ = evaluate_model(model, validation, [metric], ctx=ctx, seed=self.seed, side=side)
            score = overall[metric.name]
            trials.append({"params": params, metric.name: score})
            if best is None or score > best[0]:
                best = (score, params)
        return (best[1] if best else {}), trials

    def run(self) -> ExperimentResult:
        metrics = self._metrics()
        self._validate(metrics)
        started = time.time()
        ctx = MetricContext.build(self.split.train, self.split.candidates)
        side = self._side(self.split)
        validation: Split | None = None
        runs: list[ModelRun] = []
        from rich.progress import Progress

        with Progress(disable=not self.progress, transient=True) as bar:
            task = bar.add_task("evaluating", total=len(self.models))
            for name, spec in self.models.items():
                bar.update(task, description=f"{name}")
                trials: list[dict[str, Any]] = []
                tune_seconds = 0.0
                if isinstance(spec, Tuned):
                    params: dict[str, Any] = {}
                    if spec.grid and len(spec.points()) > 1:
                        if validation is None:
                            validation = self.split.validation()
                        t0 = time.perf_counter()
                        params, trials = self._tune(spec, validation)
                        tune_seconds = time.perf_counter() - t0
                    elif spec.grid:
                        params = spec.points()[0]
                    model = spec.build(params)
                else:
                    model, params = spec, {}
                fit_seconds = self._fit(model, self.split.train)
                per_user, overall, rank_seconds = evaluate_model(
                    model, self.split, metrics, ctx=ctx, seed=self.seed, side=side
                )
                runs.append(
                    ModelRun(
                        name=name,
                        model=type(model).__name__,
                        config=model.config.model_dump(mode="json"),
                        tuned=params,
                        trials=trials,
                        overall=overall,
                        per_user=per_user,
                        fit_seconds=fit_seconds,
                        rank_seconds=rank_seconds,
                        tune_seconds=tune_seconds,
                    )
                )
                bar.advance(task)
        header = protocol_header(
            self.split,
            metrics,
            seed=self.seed,
            tune_metric=self.tune_metric,
            grouped=self.groups is not None,
            started=started,
        )
        return ExperimentResult(
            protocol=header,
            runs=runs,
            users=[str(u) for u in self.split.train.user_vocab.ids[self.split.users]],
            headline=self.headline,
            ours=list(self.ours),
            notes=[*self.notes, *self.split.notes, *filter(None, [side_text_note(self.split, side)])],
        )
