"""``personas recommend``: top items for a known user, a profile text or a handful of items, with why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

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
from personas.config import as_kind, as_name, registry
from personas.data import Dataset
from personas.encode import encode_query
from personas.errors import ConfigError
from personas.recommend import (
    Recommendations,
    Recommender,
    history_row,
    reason_phrases,
)

#: The recommenders --model can fit now, by kind (the CLI spells them kebab-case: item-knn).
CLI_MODELS = ("router", "hybrid", "ease", "item_knn", "als", "group_popular", "content", "most_popular")


def behaviour_groups(dataset: Dataset, k: int, seed: int = 0) -> np.ndarray:
    """Spherical k-means on a truncated SVD of the user x item matrix; users without history get -1."""
    from sklearn.decomposition import TruncatedSVD

    from personas.discover import KMeansConfig, KMeansGroups

    x = dataset.matrix("binary")
    has = np.flatnonzero(np.diff(x.indptr) > 0)
    labels = np.full(dataset.n_users, -1, dtype=np.int64)
    if k < 1 or len(has) <= k:
        return labels
    dims = max(1, min(32, dataset.n_items - 1, len(has) - 1))
    z = TruncatedSVD(dims, random_state=seed).fit_transform(x[has])
    z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-12
    labels[has] = KMeansGroups(KMeansConfig(k=k, seed=seed)).fit(z.astype(np.float32)).labels_
    return labels


def _place_new(model: Recommender, text: str | None, history: np.ndarray, **side: np.ndarray | None) -> int | None:
    """A new user's group by the model's placer (text vector or centroids in ``side``), None without groups."""
    placer = model.group_placer()
    if placer is None or (not len(history) and not text):
        return None
    if side:
        placer = placer.with_side(centroids=side.get("centroids"))
    return placer.place(text=text, vector=side.get("vector"), history=history_row(history, model.n_items_))


def _show(
    model: Recommender,
    titles: list[str],
    rec: Recommendations,
    history: np.ndarray,
    group: int | None,
    text: str | None = None,
    vector: np.ndarray | None = None,
    group_name: Callable[[int], str] = lambda group: "k-means on behaviour",
) -> None:
    table = Table(title_justify="left")
    for col in ("#", "item", "title", "score", "why"):
        table.add_column(col, justify="right" if col in ("#", "score") else "left")
    item_ids = model.item_vocab_.ids
    shown = [int(i) for i in rec.ids[0] if i >= 0]
    reasons = model.explain(shown, history=history, group=group, text=text, vector=vector)
    for rank, (item, score, why) in enumerate(zip(shown, rec.scores[0], reasons, strict=False), start=1):
        phrases = "; ".join(reason_phrases(why, titles.__getitem__, group_name))
        table.add_row(str(rank), str(item_ids[item]), titles[item], f"{score:.3f}", phrases)
    console.print(table)


@user_errors
def recommend(
    user: Annotated[list[str] | None, typer.Option(help="A known user id (repeat for several).")] = None,
    text: Annotated[str | None, typer.Option(help="Profile text of a new user.")] = None,
    items: Annotated[str | None, typer.Option(help="Comma-separated item ids a new user took.")] = None,
    dataset: Annotated[str, typer.Option(help="Built-in dataset (ml-100k, ml-latest-small) or a data path.")] = (
        "ml-100k"
    ),
    model: Annotated[
        str,
        typer.Option(
            help="A recommender to fit now (router, hybrid, ease, item-knn, als, group-popular, content, "
            "most-popular), or a folder written by `personas run`/`personas demo` (its saved model is used, "
            "nothing is re-fitted)."
        ),
    ] = "router",
    use: Annotated[
        str | None, typer.Option(help="With --model RUN_FOLDER: which saved model (default: router if saved).")
    ] = None,
    n: Annotated[int, typer.Option(help="How many items.")] = 10,
    groups: Annotated[int, typer.Option(help="Behaviour groups (k-means) given to the model; 0 for none.")] = 10,
    load: Annotated[Path | None, typer.Option(help="Use a model saved with --save instead of fitting one.")] = None,
    save: Annotated[Path | None, typer.Option(help="Save the fitted model to this folder (arrays + JSON).")] = None,
    map_: MapOption = None,
    encoding: EncodingOption = "utf-8",
    delimiter: DelimiterOption = None,
    unknown_ids: UnknownIdsOption = "error",
) -> None:
    """Recommend for known users (--user), or a new user from --text and/or --items, saying why."""
    if not user and text is None and items is None:
        raise ConfigError("Say who to recommend for: --user ID, --text '...' or --items a,b,c.")
    if Path(model).is_dir():
        _from_run(Path(model), use, user or [], text, items, n)
        return
    if as_kind(model) not in CLI_MODELS or "_" in model:
        raise ConfigError(
            f"--model {model!r} is neither a recommender ({', '.join(as_name(k) for k in CLI_MODELS)}) nor an "
            "existing run folder."
        )
    data = open_dataset(dataset, map_, unknown_ids, encoding=encoding, delimiter=delimiter)
    titles = [
        t if isinstance(t, str) and t.strip() else str(i)
        for t, i in zip(data.items["title"], data.item_vocab.ids, strict=True)
    ]
    if load is not None:
        fitted = Recommender.load(load)
        if fitted.item_vocab_ != data.item_vocab:
            raise ConfigError(f"The model in {load} was fitted on other items than {dataset!r}; pass that dataset.")
        placer = fitted.group_placer()
        labels = placer.labels if placer is not None else None
    else:
        labels = behaviour_groups(data, groups) if groups else None
        err_console.print(f"Fitting {model} on {data.name} ...", highlight=False)
        fitted = registry.build(model, Recommender).fit(data, groups=labels)
    if save is not None:
        fitted.save(save)
        err_console.print(f"Saved to {save}", highlight=False)
    for uid in user or []:
        found = _known_user(fitted, titles, uid, n)
        if found is None:
            continue
        rec, row, history = found
        group = int(labels[row]) if labels is not None else None
        routed = fitted.route_of(len(history))
        route = f", route {routed}" if routed is not None else ""
        console.print(f"[bold]User {uid}[/]: {len(history)} items taken, group {group}{route}", highlight=False)
        _show(fitted, titles, rec, history, group)
    if text is not None or items is not None:
        history_ids = [i.strip() for i in (items or "").split(",") if i.strip()]
        rec = fitted.recommend_new(text=text, history=history_ids or None, n=n)
        if rec.unknown:
            err_console.print(f"[yellow]Unknown item ids ignored: {', '.join(rec.unknown)}[/]", highlight=False)
        known = [i for i in history_ids if i in fitted.item_vocab_]
        history = fitted.item_vocab_.rows(known) if known else np.array([], dtype=np.int64)
        group = _place_new(fitted, text, history)
        console.print(f"[bold]New user[/]: {len(history)} items given, group {group}", highlight=False)
        _show(fitted, titles, rec, history, group, text)


def _known_user(
    fitted: Recommender, titles: list[str], uid: str, n: int
) -> tuple[Recommendations, int, np.ndarray] | None:
    """A known user's recommendations, row and taken items; an unknown id gets the fallback shown and None."""
    rec = fitted.recommend([uid], n=n)
    if rec.unknown:
        err_console.print(f"[yellow]Unknown user {uid!r}: showing the fallback (most popular).[/]")
        _show(fitted, titles, rec, np.array([], dtype=np.int64), None)
        return None
    row = fitted.user_vocab_.row(uid)
    return rec, row, fitted.seen_[row].indices


def _from_run(folder: Path, use: str | None, users: list[str], text: str | None, items: str | None, n: int) -> None:
    """Recommend from a verified pipeline run folder: saved model, persona names, the run's text encoder."""
    from personas.pipeline import load_run

    run = load_run(folder)
    names = run.manifest.get("models", [])
    fitted = run.model(use or ("router" if "router" in names else None))
    titles = [str(t) or str(i) for t, i in zip(run.items["title"], run.items["item_id"], strict=True)]
    labels = run.users["persona"].to_numpy()
    persona_names = {p.group: p.display_name for p in run.personas}
    coarse_names = {p.group: p.display_name for p in run.coarse_personas}

    def describe(group: int | None) -> str:
        if group is None or group < 0:
            return "none"
        coarse = run.coarse_of(group)  # a two-level run: the coarse persona above it
        above = f", in coarse persona {coarse} ({coarse_names.get(coarse, '?')})" if coarse is not None else ""
        return f"{group} ({persona_names.get(group, '?')}){above}"

    def name_of(group: int) -> str:
        return persona_names.get(group, "?")

    for uid in users:
        found = _known_user(fitted, titles, uid, n)
        if found is None:
            continue
        rec, row, history = found
        group = int(labels[row])
        console.print(f"[bold]User {uid}[/]: {len(history)} items taken, persona {describe(group)}", highlight=False)
        _show(fitted, titles, rec, history, group, group_name=name_of)
    if text is not None or items is not None:
        history_ids = [i.strip() for i in (items or "").split(",") if i.strip()]
        vector = None
        encoder = run.text_encoder() if text else None
        if encoder is not None and text:
            vector = encode_query(encoder, text)  # "..., but no horror" points away from horror
        rec = fitted.recommend_new(text=text, vector=vector, history=history_ids or None, n=n)
        if rec.unknown:
            err_console.print(f"[yellow]Unknown item ids ignored: {', '.join(rec.unknown)}[/]", highlight=False)
        known = [i for i in history_ids if i in fitted.item_vocab_]
        history = fitted.item_vocab_.rows(known) if known else np.array([], dtype=np.int64)
        # the service's rule: the text's nearest persona centroid, else the items' group, else the text's words
        new_group = run.place(fitted, text=text, vector=vector, history=history_ids).fine
        console.print(f"[bold]New user[/]: {len(history)} items given, persona {describe(new_group)}", highlight=False)
        _show(fitted, titles, rec, history, new_group, text, vector, name_of)
