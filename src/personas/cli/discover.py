"""``personas discover``: find groups in a dataset (or in given vectors) and write them with their
persona cards; ``personas describe``: print persona cards."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.markup import escape
from rich.panel import Panel

from personas._files import write_atomic
from personas.cli._common import (
    DelimiterOption,
    EncodingOption,
    MapOption,
    UnknownIdsOption,
    console,
    err_console,
    open_dataset,
    user_errors,
)
from personas.errors import ConfigError, DataError

METHODS = ("kmeans", "agglomerative", "hdbscan", "leiden")
ENCODERS = ("tfidf", "behaviour", "minilm")


def _vectors(dataset: Any, texts: list[str], encoder: str, vectors: Path | None) -> tuple[np.ndarray, Any]:
    """The users' vectors, and the text encoder that made them (None when they are not encodings of ``texts``):
    with it, describe chooses the name facts that point at the members in that space."""
    if vectors is not None:
        if not vectors.exists():
            raise DataError(f"--vectors {vectors}: no such file.")
        arr = np.load(vectors, allow_pickle=False)
        if arr.ndim != 2 or arr.shape[0] != dataset.n_users:
            raise DataError(
                f"--vectors {vectors}: shape {arr.shape}, expected ({dataset.n_users}, dim): one row per user, "
                "in the dataset's user order."
            )
        return arr, None
    from personas.encode import BehaviourEncoder, TfidfEncoder, make_encoder

    if encoder == "tfidf":
        tfidf = TfidfEncoder(256).fit(texts)
        return tfidf.encode(texts), tfidf
    if encoder == "behaviour":
        return BehaviourEncoder(64).fit(dataset).vectors_, None
    if encoder == "minilm":
        minilm = make_encoder("minilm")
        return minilm.encode(texts, show_progress=True), minilm
    raise ConfigError(f"--encoder must be one of {', '.join(ENCODERS)}. Got {encoder!r} instead.")


def _finder(method: str, k: int | None, threshold: float | None, seed: int, min_group_size: int) -> Any:
    from personas.discover import AgglomerativeGroups, HDBSCANGroups, KMeansGroups, LeidenGroups

    if method == "kmeans":
        return KMeansGroups(k=k or 8, seed=seed)
    if method == "agglomerative":
        if threshold is not None:  # --threshold is a cosine distance: average linkage's scale
            return AgglomerativeGroups(distance_threshold=threshold, linkage="average")
        return AgglomerativeGroups(k=k or 8)
    if method == "hdbscan":
        return HDBSCANGroups(min_group_size=min_group_size)
    if method == "leiden":
        return LeidenGroups(min_similarity=threshold if threshold is not None else 0.0, seed=seed)
    raise ConfigError(f"--method must be one of {', '.join(METHODS)}. Got {method!r} instead.")


@user_errors
def discover(
    source: Annotated[str, typer.Argument(help="A built-in dataset name (ml-100k), a data file or folder.")],
    out: Annotated[Path, typer.Option(help="Folder for assignments.parquet, personas.json, groups.json.")] = Path(
        "runs/discover"
    ),
    method: Annotated[str, typer.Option(help="kmeans, agglomerative, hdbscan or leiden.")] = "kmeans",
    k: Annotated[str, typer.Option(help="Number of groups, or 'auto' (choose_k over 2..12).")] = "auto",
    threshold: Annotated[
        float | None,
        typer.Option(help="agglomerative: cosine distance threshold (instead of k); leiden: min edge similarity."),
    ] = None,
    min_group_size: Annotated[int, typer.Option(help="hdbscan: smallest group.")] = 10,
    encoder: Annotated[str, typer.Option(help="tfidf, behaviour or minilm (ignored with --vectors).")] = "tfidf",
    vectors: Annotated[Path | None, typer.Option(help="Precomputed user vectors (.npy, one row per user).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random step.")] = 0,
    generate_names: Annotated[
        bool, typer.Option(help="Also name groups with the local SmolLM2 model (the 'naming' extra); slow.")
    ] = False,
    map_: MapOption = None,
    encoding: EncodingOption = "utf-8",
    delimiter: DelimiterOption = None,
    unknown_ids: UnknownIdsOption = "error",
) -> None:
    """Find groups of similar users and write their assignments and persona cards."""
    from personas.data import build_profiles
    from personas.describe import describe_groups, personas_to_json
    from personas.discover import GroupingWarning, KMeansGroups, choose_k

    dataset = open_dataset(source, map_, unknown_ids, encoding=encoding, delimiter=delimiter)
    texts = build_profiles(dataset)
    x, text_encoder = _vectors(dataset, texts, encoder, vectors)
    chosen: dict[str, Any] | None = None
    k_value: int | None = None
    if k != "auto":
        try:
            k_value = int(k)
        except ValueError:
            raise ConfigError(f"--k must be an int or 'auto'. Got {k!r} instead.") from None
    elif method in ("kmeans", "agglomerative") and threshold is None:
        base = KMeansGroups(seed=seed) if method == "kmeans" else _finder(method, 2, None, seed, min_group_size)
        upper = min(12, x.shape[0])
        with err_console.status("choosing k (silhouette + stability over k = 2..12)"):
            choice = choose_k(x, range(2, upper + 1), finder=base, seed=seed)
        k_value = choice.k
        chosen = choice.model_dump()
        err_console.print(f"chose k = {choice.k}: {choice.rule}", highlight=False)
    with warnings.catch_warnings(record=True) as caught:  # the finder's check of its result, said plainly
        warnings.simplefilter("always", GroupingWarning)
        finder = _finder(method, k_value, threshold, seed, min_group_size).fit(x)
    for warning in caught:
        if issubclass(warning.category, GroupingWarning):
            err_console.print(f"[yellow]Warning:[/] {warning.message}", highlight=False)
    namer = None
    if generate_names:
        from personas.describe import GenerativeNamer

        namer = GenerativeNamer()
    personas = describe_groups(
        finder.labels_,
        texts=texts,
        vectors=x,
        dataset=dataset,
        namer=namer,
        encoder=text_encoder,
        text_vectors=x if text_encoder is not None else None,
    )
    assignments = pd.DataFrame({"user_id": [str(u) for u in dataset.user_vocab.ids], "group": finder.labels_})
    parquet = assignments.to_parquet(index=False)  # bytes when no path is given
    assert isinstance(parquet, bytes)
    groups = {
        "dataset": dataset.name,
        "n_users": dataset.n_users,
        "vectors": str(vectors) if vectors is not None else encoder,
        "config": finder.config.model_dump(mode="json"),
        "n_groups": finder.n_groups_,
        "sizes": finder.sizes_.tolist(),
        "report": finder.report_.model_dump(),
        "choose_k": chosen,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "assignments.parquet", parquet)
    write_atomic(out / "personas.json", personas_to_json(personas))
    write_atomic(out / "groups.json", json.dumps(groups, indent=2))
    noise = int((finder.labels_ < 0).sum())
    console.print(
        f"{finder.n_groups_} groups ({method}) over {dataset.n_users:,} users"
        + (f", {noise} noise" if noise else "")
        + f". Wrote {out}/assignments.parquet, personas.json, groups.json.",
        highlight=False,
    )
    print_cards(personas, limit=None)


def _stability(p: Any) -> str:
    if p.stability is None:
        return ""
    return f", stability {p.stability:.2f}" + (" [red]unstable[/]" if p.unstable else "")


def print_tree(coarse: list[Any], fine: list[Any]) -> None:
    """Coarse personas (for reading) with their fine sub-personas (for recommending): sizes, names, stability."""
    from rich.tree import Tree

    by_group = {p.group: p for p in fine}
    tree = Tree(f"[bold]{len(coarse)} coarse personas, {len(fine)} fine personas[/]")
    for c in coarse:
        branch = tree.add(
            f"[bold]{c.group}: {escape(c.display_name)}[/] — {c.size} users ({100 * c.share:.0f}%){_stability(c)}"
        )
        for g in c.children:
            if g in by_group:
                f = by_group[g]
                branch.add(
                    f"{f.group}: {escape(f.display_name)} — {f.size} users ({100 * f.share:.0f}%){_stability(f)}"
                )
    console.print(tree)


def print_cards(personas: list[Any], limit: int | None = None, parents: dict[int, Any] | None = None) -> None:
    for p in personas[:limit]:
        body = [f"[bold]{p.size}[/] users ({100 * p.share:.0f}%){_stability(p)}"]
        if parents and p.parent in parents:
            body.append(f"in coarse persona {p.parent}: {parents[p.parent].display_name}")
        if p.children:
            body.append("sub-personas: " + ", ".join(map(str, p.children)))
        facts = getattr(p, "name_facts", [])
        if facts:  # the numbers behind the name
            body.append("name facts: " + "; ".join(escape(f.evidence) for f in facts))
        if p.keywords:
            body.append("keywords: " + ", ".join(k.term for k in p.keywords[:8]))
        if p.distinctive_items:
            body.append(
                "distinctive: "
                + "; ".join(f"{i.title} (×{i.lift:.1f}, {i.users} users)" for i in p.distinctive_items[:5])
            )
        if p.attribute_skew:
            body.append(
                "over-represented: " + ", ".join(f"{s.attribute} {s.value} ×{s.lift:.1f}" for s in p.attribute_skew[:4])
            )
        for r in p.representatives[:2]:
            body.append(f"user {r.user_id}: “{r.quote}”")
        console.print(Panel("\n".join(body), title=f"{p.group}: {p.display_name}", title_align="left"))


@user_errors
def describe(
    personas_file: Annotated[
        Path,
        typer.Argument(help="personas.json, or a folder with one (written by `personas run` or `personas discover`)."),
    ],
    group: Annotated[int | None, typer.Option(help="Only this group (of --level; fine by default).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of cards.")] = False,
    level: Annotated[
        str, typer.Option(help="Two-level runs: 'all' (the tree, then both levels' cards), 'coarse' or 'fine'.")
    ] = "all",
) -> None:
    """Print persona cards; in a two-level run, the tree of coarse personas and their fine sub-personas first."""
    from personas.describe import personas_from_json, personas_to_json

    if personas_file.is_dir():
        folder = personas_file
        personas_file = folder / "personas.json"
        if not personas_file.is_file():
            raise DataError(
                f"{folder} is a folder without a personas.json; give a run folder (`personas run`), a "
                "`personas discover --out` folder, or the personas.json file itself."
            )
    if not personas_file.exists():
        raise DataError(f"{personas_file}: no such file; run `personas discover` first.")
    try:
        personas = personas_from_json(personas_file)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{personas_file} is not a personas file: {str(exc).splitlines()[0]}") from None
    if level not in ("all", "coarse", "fine"):
        raise ConfigError(f"--level must be one of all, coarse, fine. Got {level!r} instead.")
    coarse_file = personas_file.with_name("coarse_personas.json")
    coarse = personas_from_json(coarse_file) if coarse_file.is_file() else []
    if level == "coarse" and not coarse:
        raise DataError(f"{personas_file.parent} has one level of personas; run with [discover] hierarchy = true.")
    if level == "coarse":
        personas, coarse = coarse, []
    if group is not None:
        personas = [p for p in personas if p.group == group]
        if not personas:
            raise DataError(f"{personas_file} has no group {group}.")
    if level == "fine" or group is not None:
        coarse_shown: list[Any] = []
    else:
        coarse_shown = coarse
    if as_json:
        if coarse_shown:
            coarse_json = json.loads(personas_to_json(coarse_shown))
            console.print_json(data={"coarse": coarse_json, "fine": json.loads(personas_to_json(personas))})
        else:
            console.print_json(personas_to_json(personas))
        return
    if coarse_shown:
        print_tree(coarse_shown, personas)
        console.rule("coarse personas (for reading)")
        print_cards(coarse_shown)
        console.rule("fine personas (for recommending)")
    print_cards(personas, parents={c.group: c for c in coarse})


def register(app: typer.Typer) -> None:
    """Add ``discover`` and ``describe`` to the main app."""
    app.command("discover")(discover)
    app.command("describe")(describe)
