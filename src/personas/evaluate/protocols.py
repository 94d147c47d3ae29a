"""The public protocols, ready to run: which split, which models (each with a small validation grid),
which groups, and which models are personas' own (for the headline comparison).

``run_protocol(dataset, "warm")`` returns one :class:`ExperimentResult` per split (few-shot gives three:
N = 1, 3, 5 revealed interactions, side by side). Models are looked up by name in
:mod:`personas.recommend` (plus the LightFM peer), so a model that is not installed is reported, not fatal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from personas.config import registry
from personas.data import Dataset
from personas.errors import ConfigError
from personas.evaluate._memo import DatasetMemo
from personas.evaluate.experiment import Experiment, GroupSource, Tuned
from personas.evaluate.groups import (
    NoProfileTextError,
    TextVectorizer,
    behaviour_groups,
    encoder_vectorizer,
    profile_groups,
    side_groups,
)
from personas.evaluate.report import ExperimentResult
from personas.evaluate.splits import (
    ColdItems,
    ColdTaggers,
    ColdUsers,
    FewShotNewUsers,
    FewShotUsers,
    Split,
    Splitter,
    TemporalSplit,
)
from personas.recommend import Recommender

__all__ = ["OURS", "PROTOCOLS", "model_specs", "protocol_splits", "run_protocol", "tuned_text_space"]

PROTOCOLS = ("warm", "cold-users", "few-shot", "few-shot-new", "cold-items", "cold-users-tags")

# personas' own models (they use groups or text); the others are the peers they must beat.
OURS = ("GroupPopular", "ContentBased", "FeatureCF", "Hybrid", "ColdStartRouter", "TextMatch")

# label (as tables print it) -> (the model's kind in the component registry, grid, fixed params). Grids stay
# small: every point is one fit on the validation split, and a protocol on ml-100k must run in minutes on 2 cores.
_GRIDS: dict[str, tuple[str, dict[str, list[Any]], dict[str, Any]]] = {
    "Random": ("random", {}, {}),
    "MostPopular": ("most_popular", {}, {}),
    "ItemKNN": ("item_knn", {"k": [20, 100, 400], "shrink": [0.0, 10.0]}, {}),
    "EASE": ("ease", {"l2": [50.0, 200.0, 800.0]}, {}),
    "ALS": ("als", {"factors": [32, 64], "regularization": [0.05, 0.5]}, {}),
    "LightFM": ("lightfm", {"identity": [True, False]}, {"epochs": 15, "no_components": 32}),
    "GroupPopular": ("group_popular", {"shrinkage": [1.0, 10.0, 100.0]}, {}),
    "ContentBased": ("content", {"use_kg": [True, False]}, {}),
    "FeatureCF": ("feature_cf", {"l2": [3.0, 10.0, 30.0, 100.0]}, {}),
    "Hybrid": ("hybrid", {}, {}),
    "ColdStartRouter": ("router", {}, {}),
    # They read the items' texts in the language-model space: run with a text encoder (--text-encoder).
    "TextMatch": ("text_match", {}, {}),
    "TextItemKNN": ("text_item_knn", {"k": [20, 100]}, {}),
    # The peer that led the independent strict few-shot check: item neighbours + the vote of similar users.
    "ItemDemoKNN": ("item_demo_knn", {"weight": [0.5, 1.0, 2.0]}, {}),
    # User-kNN over the users' side-text sentence vectors (demographics sentence, own words, tags): cold users.
    "TextUserKNN": ("text_user_knn", {"k": [10, 50, 200]}, {}),
}
TEXT_MODELS = ("TextMatch", "TextItemKNN", "TextUserKNN")
DEFAULT_MODELS = tuple(name for name in _GRIDS if name not in TEXT_MODELS)


def _factory(kind: str) -> Callable[..., Any]:
    if kind in ("lightfm", "text_item_knn", "item_demo_knn", "text_user_knn"):
        import personas.evaluate.peers  # noqa: F401  (registers the peers defined there)
    return registry.get(kind, Recommender)


def model_specs(names: Sequence[str] | None = None, *, text: bool = False) -> dict[str, Tuned]:
    """Tuned specs for the named models (default: all of :data:`DEFAULT_MODELS`); with ``text`` (item texts
    in the language-model space are given), FeatureCF also tries them as a feature block."""
    names = list(names or DEFAULT_MODELS)
    unknown = [n for n in names if n not in _GRIDS]
    if unknown:
        raise ConfigError(f"Unknown model(s) {unknown}; choose from {', '.join(_GRIDS)}.")
    specs = {}
    for name in names:
        kind, grid, fixed = _GRIDS[name]
        if text and name == "FeatureCF":
            grid = {**grid, "text_vectors": [0.0, 1.0]}
        specs[name] = Tuned(_factory(kind), grid, fixed)
    return specs


def protocol_splits(protocol: str, *, seed: int = 0) -> list[tuple[str, Splitter]]:
    """(label, splitter) pairs of a protocol."""
    if protocol == "warm":
        return [("warm", TemporalSplit(seed=seed))]
    if protocol == "cold-users":
        return [("cold-users", ColdUsers(seed=seed))]
    if protocol == "few-shot":
        return [(f"few-shot-{n}", FewShotUsers(n_shots=n, seed=seed)) for n in (1, 3, 5)]
    if protocol == "few-shot-new":
        return [(f"few-shot-new-{n}", FewShotNewUsers(n_shots=n, seed=seed)) for n in (1, 3, 5)]
    if protocol == "cold-items":
        return [("cold-items", ColdItems(seed=seed))]
    if protocol == "cold-users-tags":
        # The same held-out users twice: with every tag they wrote, and without the tags on their own test items.
        return [
            ("cold-users-tags-all", ColdTaggers(held_tags="keep", seed=seed)),
            ("cold-users-tags-no-held", ColdTaggers(held_tags="drop", seed=seed)),
        ]
    raise ConfigError(f"Unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}.")


GROUP_SOURCES = ("profile", "minilm", "side", "behaviour")
# MiniLM encodes every profile (256 tokens) once per train set: ~8 minutes for 943 profiles on 2 busy cores,
# too slow to try on validation by default; ask for it with --groups minilm.
AUTO_SOURCES = ("profile", "side", "behaviour")
_MINILM: list[TextVectorizer] = []  # one vectorizer (and its vector memo) per process


_SOURCES: dict[tuple[str, int, int], GroupSource] = {}


def _read_only_labels(source: GroupSource, train: Dataset) -> np.ndarray:
    labels = np.asarray(source(train), dtype=np.int64)
    labels.flags.writeable = False  # shared by every model fitted on this train set
    return labels


def group_source(kind: str, k: int, seed: int) -> GroupSource:
    """The group source ``kind`` with ``k`` groups; one per (kind, k, seed) per process, remembering the
    labels of its last few train sets (choosing groups, tuning and the test run ask for the same ones)."""
    key = (kind, k, seed)
    if key not in _SOURCES:
        if kind == "profile":
            source = profile_groups(k, seed=seed)
        elif kind == "minilm":
            if not _MINILM:
                _MINILM.append(encoder_vectorizer("minilm"))
            source = profile_groups(k, seed=seed, vectorizer=_MINILM[0])
        elif kind == "side":
            source = side_groups(k, seed=seed)
        elif kind == "behaviour":
            source = behaviour_groups(k, seed=seed)
        else:
            raise ConfigError(f"Unknown group source {kind!r}; choose 'auto' or one of {', '.join(GROUP_SOURCES)}.")
        _SOURCES[key] = DatasetMemo(partial(_read_only_labels, source))
    return _SOURCES[key]


def choose_groups(
    split: Split, *, kinds: Sequence[str] = AUTO_SOURCES, ks: Sequence[int] = (8, 16, 32), seed: int = 0
) -> tuple[str, int, list[dict[str, Any]]]:
    """The group source and k under which GroupPopular ranks best on the split's validation split
    (NDCG@10); test data is not used. Returns (kind, k, trials)."""
    from personas.recommend import GroupPopular

    validation = split.validation()
    trials = []
    best: tuple[float, str, int] | None = None
    for kind in kinds:
        for k in ks:
            exp = Experiment(
                validation, {"GroupPopular": GroupPopular()}, ["ndcg@10"], groups=group_source(kind, k, seed)
            )
            try:
                score = exp.run().run("GroupPopular").overall["NDCG@10"]
            except NoProfileTextError:
                break  # a text source on a dataset without text: not a candidate at any k
            trials.append({"groups": kind, "k": k, "NDCG@10": score})
            if best is None or score > best[0]:
                best = (score, kind, k)
    if best is None:
        raise ConfigError(f"None of the group sources {list(kinds)} can group users of {split.dataset!r}.")
    return best[1], best[2], trials


def run_protocol(
    dataset: Dataset,
    protocol: str,
    *,
    models: Sequence[str] | None = None,
    groups: str = "auto",
    n_groups: int | None = None,
    seed: int = 0,
    progress: bool = False,
    on_result: Callable[[str, ExperimentResult], None] | None = None,
    text_encoder: str | None = None,
    tune: bool = False,
    tune_config: Any | None = None,
) -> list[tuple[str, ExperimentResult]]:
    """Run one protocol; returns (label, result) per split and calls ``on_result`` as each one finishes.

    ``groups="auto"`` picks the group source and k on validation (:func:`choose_groups`); otherwise
    ``groups`` names the source and ``n_groups`` its k (16 when not given). ``text_encoder`` (a pretrained
    kind such as "minilm"): the items' texts (:func:`~personas.data.item_documents`) are encoded with it and
    given to every model, users without train history have their side text encoded the same way, and the
    text models (TextMatch, the TextItemKNN peer) join the default models. ``tune`` (needs ``text_encoder``):
    per split, a projection head is trained on that split's train data only (:func:`tuned_text_space`, with
    ``tune_config``, a :class:`~personas.encode.TuneConfig`) and both the item texts and the cold users' side
    texts go through it."""
    if tune and text_encoder is None:
        raise ConfigError("The 'tune' parameter of run_protocol needs a text encoder (text_encoder='minilm').")
    if text_encoder is not None and models is None:
        models = [*DEFAULT_MODELS, *TEXT_MODELS]
    specs = model_specs(models, text=text_encoder is not None)
    encoder, item_text_vectors = _text_space(dataset, text_encoder) if text_encoder else (None, None)
    out = []
    for label, splitter in protocol_splits(protocol, seed=seed):
        split = splitter.split(dataset)
        if groups == "auto":
            kind, k, trials = choose_groups(split, ks=(n_groups,) if n_groups else (8, 16, 32), seed=seed)
            tried = ", ".join(f"{t['groups']} k={t['k']}: {t['NDCG@10']:.4f}" for t in trials)
            chosen = f"chosen on validation by GroupPopular NDCG@10 ({tried})"
        else:
            kind, k, chosen = groups, n_groups or 16, "given on the command line"
        notes = [
            f"groups: {kind} k-means, k={k}, {chosen}",
            "group sources, all from train data only: profile = TF-IDF+SVD of each user's profile text (demographics, "
            "own text, tags, liked items in train; users without history join the group whose side-only centroid is "
            "closest); minilm = the same with all-MiniLM-L6-v2 sentence vectors (int8 ONNX); side = TF-IDF of the "
            "profile without liked items; behaviour = SVD of the train matrix",
            "users without train history are scored through each model's new-user path from their train-only "
            "profile text and group label; models without one (Random, MostPopular) score their rows as they are; "
            "LightFM scores its rows from user/item features",
            "personas' own models are marked (personas); the others are peers",
        ]
        if encoder is not None:
            notes.append(
                f"text space: every item's text (title, year, genres, tags, description) encoded by {encoder.name}, "
                "given to every model (TextMatch, TextItemKNN and the router read it); users without train history "
                "have their train-only profile text encoded the same way"
            )
        # A split that takes users' tags out of train takes them out of the item texts too.
        tagged = encoder is not None and split.revealed_text is not None
        split_encoder, split_items = encoder, item_text_vectors
        if tune and encoder is not None and item_text_vectors is not None:
            base_items = _train_item_vectors(encoder)(split.train) if tagged else item_text_vectors
            split_encoder, split_items, evidence = tuned_text_space(
                split.train, encoder, base_items, tune_config, seed=seed
            )
            notes.append(_tune_note(evidence))
        if split.revealed_text is not None:
            notes.append(
                "cold users by their own tags: their only input is the text of the tags they wrote ('tags: a, b, "
                "...', distinct tags in file order; no demographics exist here and none of their items), given at "
                "prediction time through each model's new-user path; their group is not given (train had no text "
                "of theirs to place them by), so GroupPopular ranks them by global popularity and the router "
                "places them from their words itself; item texts in the text space are built from train (their "
                "tags are not in them); validation is carved by the same rule from the other taggers"
            )
        if split.revealed is not None:
            notes.append(
                "strict: held-out users are never in train; their first N items reach every model at prediction "
                "time only, through its new-user path (recommend_new with the revealed items, side text and group); "
                "LightFM scores held-out users from their user features alone (it has no new-user path here)"
            )
        experiment = Experiment(
            split,
            specs,
            groups=group_source(kind, k, seed),
            ours=[n for n in specs if n in OURS],
            seed=seed,
            progress=progress,
            notes=notes,
            item_text_vectors=_train_item_vectors(split_encoder) if tagged else split_items,
            text_encoder=split_encoder,
        )
        result = experiment.run()
        out.append((label, result))
        if on_result is not None:
            on_result(label, result)
    return out


def _train_item_vectors(encoder: Any) -> Callable[[Dataset], np.ndarray]:
    """Item texts of each train set encoded (for splits whose train holds fewer tags than the dataset: a held-out
    user's tags must not reach the item texts the models are fitted with)."""
    from personas.data import item_documents

    def vectors(train: Dataset) -> np.ndarray:
        return np.asarray(encoder.encode(item_documents(train), show_progress=False), dtype=np.float64)

    return DatasetMemo(vectors)


def _text_space(dataset: Dataset, kind: str) -> tuple[Any, np.ndarray]:
    """A pretrained text encoder (its vectors cached under PERSONAS_HOME/embeddings) and the dataset's item
    texts encoded with it."""
    from personas.config import get_settings
    from personas.data import item_documents
    from personas.encode import CachedEncoder, EmbeddingCache, make_encoder

    if kind not in ("minilm", "sentence-transformers", "multilingual"):
        raise ConfigError(
            f"The 'text_encoder' parameter of run_protocol must be a pretrained encoder (minilm, "
            f"sentence-transformers, multilingual). Got {kind!r} instead."
        )
    encoder = CachedEncoder(make_encoder(kind), EmbeddingCache(get_settings().home / "embeddings"))
    vectors = np.asarray(encoder.encode(item_documents(dataset), show_progress=False), dtype=np.float64)
    return encoder, vectors


def tuned_text_space(
    train: Dataset, encoder: Any, item_vectors: np.ndarray, config: Any | None = None, *, seed: int = 0
) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """A projection head trained on one train split only, and the text space through it.

    Pairs: each train user's side text (the profile without liked items: what a cold user has) against the
    items they took in train, and items against items co-taken in train; users and items held out of
    ``train`` never take part. Returns the tuned encoder (``encoder`` followed by the head, for cold users'
    texts), the item vectors through the head (float64, as :func:`_text_space` gives them) and the
    training evidence (with the pair counts)."""
    from personas.data import ProfileConfig, build_profiles
    from personas.encode import TunedEncoder, tune_head

    base = ProfileConfig()
    side = base.model_copy(update={"parts": tuple(p for p in base.parts if p != "behaviour")})
    texts = build_profiles(train, side)
    matrix = train.matrix("binary")
    has_history = np.diff(matrix.indptr) > 0
    rows = [r for r in range(train.n_users) if has_history[r] and texts[r]]
    items = np.asarray(item_vectors, dtype=np.float32)
    users = np.zeros((train.n_users, items.shape[1]), dtype=np.float32)
    if rows:
        users[rows] = encoder.encode([texts[r] for r in rows], show_progress=False)
    head, evidence = tune_head(users, items, matrix, config, seed=seed, show_progress=False)
    evidence["users_with_text"] = len(rows)
    return TunedEncoder(encoder, head), head.apply(items).astype(np.float64), evidence


def _tune_note(evidence: dict[str, Any]) -> str:
    config = evidence["config"]
    held = evidence["held_out_loss"]
    return (
        "tuned text space: the text encoder is frozen; a residual linear projection head "
        "(v -> normalize(v + vW + b), W = 0 at the start) is trained with symmetric InfoNCE (in-batch negatives, "
        f"temperature {config['temperature']:g}) on this split's train data only: (side text of each of the "
        f"{evidence['users_with_text']} train users with side text, an item they took) and (item, an item co-taken "
        f"by the same user) pairs, {evidence['pairs']['train']} to train and {evidence['pairs']['held_out']} held "
        f"out for early stopping (best epoch {evidence['best_epoch']} of {evidence['epochs']}, held-out loss "
        f"{held[0]:.3f} untuned -> {held[evidence['best_epoch']]:.3f}, {evidence['seconds']:.1f} s on "
        f"{evidence['device']}, seed {evidence['seed']}); every item text and every cold user's side text goes "
        "through the head; held-out users, their interactions and held-out items never take part (the validation "
        "split used to choose hyper-parameters is carved from the same train data, so the head has seen its pairs)"
    )


def _source_vectors(kind: str, train: Dataset, seed: int) -> np.ndarray:
    """The vectors a group source clusters (for internal quality measures)."""
    from personas.data import ProfileConfig
    from personas.evaluate.groups import behaviour_vectors, profile_vectors

    if kind == "behaviour":
        return behaviour_vectors(train, seed=seed)
    if kind == "minilm":
        group_source(kind, 2, seed)  # makes sure the shared vectorizer exists
        return _MINILM[0](train, ProfileConfig())
    if kind == "side":
        base = ProfileConfig()
        return profile_vectors(train, seed=seed, config=base.model_copy(update={"parts": base.parts[:-1]}))
    return profile_vectors(train, seed=seed)


def _labels_with_seed(kind: str, k: int, train: Dataset, seed: int) -> np.ndarray:
    return group_source(kind, k, seed)(train)


def _fixed_labels(labels: np.ndarray, train: Dataset) -> np.ndarray:
    del train  # the labels were computed from this same train split
    return labels


def group_quality_table(
    dataset: Dataset,
    *,
    sources: Sequence[str] = AUTO_SOURCES,
    ks: Sequence[int] = (8, 16, 32),
    attributes: Sequence[str] = ("occupation", "gender"),
    seed: int = 0,
    stability_seeds: Sequence[int] = (0, 1, 2),
) -> tuple[list[dict[str, Any]], ExperimentResult | None]:
    """Group quality on the warm split's train data, one row per (source, k): internal quality on the
    vectors that were grouped, stability across seeds, NMI/ARI against known user attributes, and how much
    the groups explain behaviour (GroupPopular vs MostPopular Recall@10 on the warm test, paired p-value).

    Returns the rows and the experiment with every GroupPopular variant (for its protocol header)."""
    from personas.evaluate.groups import group_report, labeling_stability
    from personas.recommend import GroupPopular, MostPopular

    split = TemporalSplit(seed=seed).split(dataset)
    train = split.train
    users = dataset.users
    rows: list[dict[str, Any]] = []
    labelings: dict[str, np.ndarray] = {}
    for kind in sources:
        try:
            vectors = _source_vectors(kind, train, seed)
        except NoProfileTextError as exc:
            rows.append({"groups": f"{kind}: not available", "note": str(exc)})
            continue
        for k in ks:
            labels = group_source(kind, k, seed)(train)
            stab = labeling_stability(partial(_labels_with_seed, kind, k, train), stability_seeds)
            row: dict[str, Any] = {"groups": f"{kind} k={k}"}
            report = group_report(vectors, labels, stability_ari=stab, seed=seed)
            row.update({"silhouette": report.silhouette, "davies_bouldin": report.davies_bouldin})
            row["stability_ari"] = stab
            for attr in attributes:
                if attr in users:
                    r = group_report(vectors, labels, truth=users[attr].astype(str).to_numpy(), seed=seed)
                    row[f"NMI {attr}"], row[f"ARI {attr}"] = r.nmi, r.ari
            labelings[row["groups"]] = labels
            rows.append(row)
    if not labelings:
        return rows, None
    # Each GroupPopular gets its own labels: run one experiment per labeling and merge the rows.
    result: ExperimentResult | None = None
    for name, labels in labelings.items():
        exp = Experiment(
            split,
            {"MostPopular": MostPopular(), f"GroupPopular[{name}]": GroupPopular()},
            ["recall@10", "ndcg@10"],
            groups=partial(_fixed_labels, labels),
            headline="Recall@10",
            seed=seed,
        )
        res = exp.run()
        comp = res.compare(f"GroupPopular[{name}]", "MostPopular", "Recall@10")
        row = next(r for r in rows if r["groups"] == name)
        row.update(
            {
                "GroupPopular Recall@10": comp.mean_a,
                "MostPopular Recall@10": comp.mean_b,
                "relative": comp.relative,
                "p-value": comp.p_value,
            }
        )
        result = res
    return rows, result


def group_quality_markdown(
    rows: Sequence[dict[str, Any]], result: ExperimentResult | None, *, command: str | None = None
) -> str:
    """The group-quality rows as a markdown table under the protocol of the warm split they used."""
    lines = [f"# group quality on {result.protocol['dataset'] if result else 'dataset'}", ""]
    if command:
        lines += ["Command:", "", "```", command, "```", ""]
    if result is not None:
        lines += ["| protocol | |", "| --- | --- |"]
        for key in ("dataset", "dataset_fingerprint", "split", "filtering", "ranking", "seeds", "date", "machine"):
            lines.append(f"| {key} | {result.protocol[key]} |")
        lines.append("")
    if rows:
        keys = list(dict.fromkeys(key for row in rows for key in row if key != "note"))
        lines.append("| " + " | ".join(keys) + " |")
        lines.append("| --- |" + " ---: |" * (len(keys) - 1))
        for row in rows:
            cells = []
            for key in keys:
                v = row.get(key)
                cells.append(f"{v:.3g}" if isinstance(v, float) else "-" if v is None else str(v))
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *[f"- {row['groups']}: {row['note']}" for row in rows if "note" in row]]
    lines += [
        "- silhouette (cosine, sampled) and Davies-Bouldin are computed on the vectors that were grouped "
        "(profile: TF-IDF+SVD of train profile text; behaviour: SVD of the train matrix), so they compare k within "
        "one source, not across sources",
        "- stability: mean pairwise ARI of the labelings from k-means seeds "
        "(same data); NMI/ARI against user attributes measure how much the groups follow demographics "
        "(MovieLens has no true taste grouping)",
        "- GroupPopular vs MostPopular: Recall@10 on the warm temporal test split; p-value: Wilcoxon signed-rank "
        "over users, two-sided",
    ]
    return "\n".join(lines) + "\n"
