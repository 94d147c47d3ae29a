"""Recommender benchmarks, one command each; ratios are within one run (other load moves absolute numbers).

    python bench/recommend.py speed     # fit time and batch throughput on ml-100k and a synthetic 1M set,
                                        # against raw `implicit` ALS and a plain numpy EASE
    python bench/recommend.py quality   # Recall@10 / NDCG@10 on ml-100k: warm (temporal split) and cold
                                        # users; every parameter chosen on a validation split carved from train

Groups for GroupPopular/Hybrid/router come from k-means on a truncated SVD of the *train* matrix (a stand-in
for personas.discover, which bench may use but the recommenders never import).
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit warns about BLAS thread pools; compare 1-thread runs

import numpy as np
import pandas as pd
import scipy.sparse as sp
from rich.console import Console
from rich.table import Table
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD

from personas.data import Dataset, ProfileConfig, build_profiles, load_builtin
from personas.recommend import (
    ALS,
    EASE,
    ColdStartRouter,
    ContentBased,
    FeatureCF,
    GroupPopular,
    Hybrid,
    ItemKNN,
    MostPopular,
    Recommender,
    temporal_holdout,
)

console = Console()


# ----------------------------------------------------------------------------------------------- helpers
def behaviour_groups(train: Dataset, k: int, seed: int = 0) -> np.ndarray:
    """k-means on a 32-d truncated SVD of the train matrix; users without train history get -1."""
    x = train.matrix("binary")
    has = np.diff(x.indptr) > 0
    z = TruncatedSVD(32, random_state=seed).fit_transform(x[has])
    z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-12
    labels = np.full(train.n_users, -1, dtype=np.int64)
    labels[has] = KMeans(k, n_init=4, random_state=seed).fit_predict(z)
    return labels


def ranked(model: Recommender, train: Dataset, rows: np.ndarray, k: int = 10) -> np.ndarray:
    scores = np.array(model.score_rows(rows), dtype=np.float64) + model.tie_break_
    seen = train.matrix("binary")[rows]
    scores[seen.nonzero()] = -np.inf
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def metrics(top: np.ndarray, truth: sp.csr_matrix) -> dict[str, float]:
    rel = truth.toarray() > 0
    hits = np.take_along_axis(rel, top, axis=1)
    n_rel = rel.sum(axis=1)
    ok = n_rel > 0
    discount = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    dcg = (hits * discount).sum(axis=1)
    ideal = np.array([discount[: min(n, top.shape[1])].sum() for n in n_rel])
    return {
        "recall@10": float((hits.sum(axis=1)[ok] / n_rel[ok]).mean()),
        "ndcg@10": float((dcg[ok] / ideal[ok]).mean()),
    }


def warm_split(dataset: Dataset) -> tuple[Dataset, sp.csr_matrix, np.ndarray]:
    keep = temporal_holdout(dataset, 0.2, min_interactions=5)
    train = dataset.subset_interactions(keep)
    truth = dataset.subset_interactions(~keep).matrix("binary")
    rows = np.flatnonzero(np.diff(truth.indptr) > 0)
    return train, truth, rows


def cold_split(dataset: Dataset, seed: int) -> tuple[Dataset, sp.csr_matrix, np.ndarray]:
    active = np.flatnonzero(np.bincount(dataset.user_rows, minlength=dataset.n_users) > 0)
    held = np.sort(np.random.default_rng(seed).choice(active, len(active) // 5, replace=False))
    mask = np.isin(dataset.user_rows, held)
    return dataset.subset_interactions(~mask), dataset.subset_interactions(mask).matrix("binary"), held


def grid(space: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(space)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*space.values())]


def tune(
    name: str, make: Callable[..., Recommender], space: dict[str, list[Any]], train: Dataset, groups_k: list[int]
) -> tuple[dict[str, Any], int, float]:
    """Best parameters (and group count) by validation Recall@10: validation carved from train by time."""
    val_train, val_truth, val_rows = warm_split(train)
    best: tuple[dict[str, Any], int, float] = ({}, groups_k[0], -1.0)
    for k in groups_k:
        groups = behaviour_groups(val_train, k)
        for params in grid(space):
            model = make(**params).fit(val_train, groups=groups)
            score = metrics(ranked(model, val_train, val_rows), val_truth[val_rows])["recall@10"]
            console.print(f"  [dim]validation {name} groups={k} {params}: recall@10 {score:.4f}[/]")
            if score > best[2]:
                best = (params, k, score)
    return best


# ----------------------------------------------------------------------------------------------- quality
def quality() -> None:
    dataset = load_builtin("ml-100k", echo=lambda _: None)
    train, truth, rows = warm_split(dataset)
    console.rule("ml-100k warm users: per-user temporal split, last 20% test (users with >= 5 interactions)")
    spaces: dict[str, tuple[Callable[..., Recommender], dict[str, list[Any]], list[int]]] = {
        "MostPopular": (MostPopular, {}, [10]),
        "GroupPopular": (GroupPopular, {"shrinkage": [0.0, 5.0, 20.0]}, [5, 10, 20, 40]),
        "ItemKNN": (ItemKNN, {"k": [20, 50, 100, 200]}, [10]),
        "EASE": (EASE, {"l2": [100.0, 200.0, 300.0, 500.0, 800.0]}, [10]),
        "ALS": (ALS, {"factors": [32, 64], "alpha": [5.0, 15.0], "regularization": [0.05]}, [10]),
        "ContentBased": (ContentBased, {"use_kg": [False, True]}, [10]),
    }
    chosen: dict[str, tuple[dict[str, Any], int]] = {}
    for name, (make, space, ks) in spaces.items():
        params, k, _ = tune(name, make, space, train, ks)
        chosen[name] = (params, k)
    group_k = chosen["GroupPopular"][1]
    hybrid = Hybrid(
        group_popular=GroupPopular.Config(**chosen["GroupPopular"][0]),
        item_knn=ItemKNN.Config(**chosen["ItemKNN"][0]),
        ease=EASE.Config(**chosen["EASE"][0]),
        content=ContentBased.Config(**chosen["ContentBased"][0]),
    )
    table = Table(title="ml-100k warm, test split (parameters from validation)")
    for col in ("model", "parameters", "groups", "recall@10", "ndcg@10", "vs MostPopular", "fit s"):
        table.add_column(col)
    results: dict[str, dict[str, float]] = {}
    models: list[tuple[str, Recommender, dict[str, Any], int]] = [
        (name, spaces[name][0](**params), params, k) for name, (params, k) in chosen.items()
    ]
    models.append(("Hybrid", hybrid, {}, group_k))
    for name, model, params, k in models:
        groups = behaviour_groups(train, k)
        start = time.perf_counter()
        model.fit(train, groups=groups)
        fit_s = time.perf_counter() - start
        results[name] = metrics(ranked(model, train, rows), truth[rows])
        if name == "Hybrid":
            assert isinstance(model, Hybrid)
            params = {n: round(w, 2) for n, w in model.weights.items()}
        base = results["MostPopular"]["recall@10"]
        table.add_row(
            name,
            str(params),
            str(k),
            f"{results[name]['recall@10']:.4f}",
            f"{results[name]['ndcg@10']:.4f}",
            f"{results[name]['recall@10'] / base:.2f}x",
            f"{fit_s:.1f}",
        )
    console.print(table)

    cold_and_few(dataset, group_k)


def ranked_new(model: Recommender, texts: list[str], rows: np.ndarray) -> np.ndarray:
    """Top-10 through the new-user path, from profile text only (as the evaluation does for cold users)."""
    return np.array([model.recommend_new(text=texts[r] or None, n=10, exclude_seen=False).ids[0] for r in rows])


def few_split(dataset: Dataset, seed: int, shots: int = 3) -> tuple[Dataset, sp.csr_matrix, np.ndarray]:
    """20% of users with >= 10 interactions keep only their first ``shots`` (by time) in train."""
    counts = np.bincount(dataset.user_rows, minlength=dataset.n_users)
    active = np.flatnonzero(counts >= 10)
    held = np.sort(np.random.default_rng(seed).choice(active, len(active) // 5, replace=False))
    order = np.lexsort((np.arange(dataset.n_interactions), dataset.timestamps, dataset.user_rows))
    users = dataset.user_rows[order]
    position = np.arange(len(order)) - np.searchsorted(users, np.arange(dataset.n_users))[users]
    first = np.zeros(dataset.n_interactions, dtype=bool)
    first[order[position < shots]] = True
    test = np.isin(dataset.user_rows, held) & ~first
    return dataset.subset_interactions(~test), dataset.subset_interactions(test).matrix("binary"), held


def cold_and_few(dataset: Dataset, group_k: int) -> None:
    profile = ProfileConfig(parts=("text", "demographics"))
    table = Table(title="ml-100k new users, test (router parameters chosen on validation users carved from train)")
    for col in ("protocol", "model", "parameters", "recall@10", "ndcg@10", "vs MostPopular"):
        table.add_column(col)

    # Cold: 20% of users held out whole (seed 0); they are known only by their profile text (demographics).
    train, truth, cold = cold_split(dataset, seed=0)
    texts = build_profiles(train, profile)
    pop = metrics(ranked_new(MostPopular().fit(train), texts, cold), truth[cold])
    # The router picks its cold-route weights inside fit, by cross-validation over train users.
    router = ColdStartRouter().fit(train, groups=behaviour_groups(train, group_k))
    l2, group_weight, content_weight = router.cold_weights_.tolist()
    rows = [
        ("MostPopular", "-", pop),
        (
            "ColdStartRouter",
            f"chosen inside fit: side ridge l2={l2:g} (0 = popularity), group {group_weight:g}, content "
            f"{content_weight:g}",
            metrics(ranked_new(router, texts, cold), truth[cold]),
        ),
    ]
    for name, params, res in rows:
        table.add_row(
            "cold users (text only)",
            name,
            params,
            f"{res['recall@10']:.4f}",
            f"{res['ndcg@10']:.4f}",
            f"{res['recall@10'] / pop['recall@10']:.2f}x",
        )

    # Few-shot: 20% of users with >= 10 interactions show only their first 3 items (seed 0). The router
    # chooses its few-route weights per history size and its switch point inside fit, on hidden train users.
    train, truth, held = few_split(dataset, seed=0)
    groups = behaviour_groups(train, group_k)
    pop = metrics(ranked(MostPopular().fit(train), train, held), truth[held])
    router = ColdStartRouter().fit(train, groups=groups)
    weights = {name: round(w, 2) for name, w in router.few_weights_for(3).items() if w}
    for name, params, res in (
        ("MostPopular", "-", pop),
        (
            "ColdStartRouter",
            f"chosen inside fit: weights at 3 items {weights}, warm model from {router.min_history_} items",
            metrics(ranked(router, train, held), truth[held]),
        ),
    ):
        table.add_row(
            "few-shot (3 items)",
            name,
            params,
            f"{res['recall@10']:.4f}",
            f"{res['ndcg@10']:.4f}",
            f"{res['recall@10'] / pop['recall@10']:.2f}x",
        )
    console.print(table)


# ----------------------------------------------------------------------------------------------- speed
def synthetic(n_users: int, n_items: int, n_interactions: int, seed: int = 0) -> Dataset:
    """Zipf-like item popularity, 20 taste clusters; items carry a title and genres for content models."""
    rng = np.random.default_rng(seed)
    clusters = rng.integers(0, 20, n_users)
    item_cluster = rng.integers(0, 20, n_items)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    users = rng.integers(0, n_users, n_interactions)
    same = rng.random(n_interactions) < 0.6
    items = np.empty(n_interactions, dtype=np.int64)
    items[~same] = rng.choice(n_items, (~same).sum(), p=pop / pop.sum())
    by_cluster = [np.flatnonzero(item_cluster == c) for c in range(20)]
    for c in range(20):
        pick = same & (clusters[users] == c)
        cand = by_cluster[c]
        w = pop[cand] / pop[cand].sum()
        items[pick] = rng.choice(cand, pick.sum(), p=w)
    inter = pd.DataFrame({"user_id": users.astype(str), "item_id": items.astype(str)})
    inter["timestamp"] = np.arange(n_interactions)
    words = np.array(["space", "love", "war", "crime", "music", "ghost", "school", "sea", "city", "robot"])
    item_table = pd.DataFrame(
        {
            "item_id": np.arange(n_items).astype(str),
            "title": [f"{words[c % 10]} {words[(c * 7 + i) % 10]} {i}" for i, c in enumerate(item_cluster)],
            "genres": [f"g{c}" for c in item_cluster],
        }
    )
    return Dataset.from_frames(inter, items=item_table, name=f"synthetic-{n_interactions}")


def plain_ease(x: sp.csr_matrix, l2: float) -> np.ndarray:
    g = (x.T @ x).toarray()
    g[np.diag_indices_from(g)] += l2
    p = np.linalg.inv(g)
    b = p / -np.diag(p)
    b[np.diag_indices_from(b)] = 0.0
    return b


def speed(n_interactions: int) -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    cases = [
        ("ml-100k", lambda: load_builtin("ml-100k", echo=lambda _: None)),
        (f"synthetic {n_interactions:,}", lambda: synthetic(max(n_interactions // 50, 100), 4000, n_interactions)),
    ]
    for label, load in cases:
        start = time.perf_counter()
        dataset = load()
        console.print(f"  [dim]{label}: loaded in {time.perf_counter() - start:.1f} s[/]")
        n_batch = min(1000, dataset.n_users)
        users = list(dataset.user_vocab.ids[:n_batch])
        groups = behaviour_groups(dataset, 20)
        table = Table(
            title=f"{label}: {dataset.n_users:,} users x {dataset.n_items:,} items, {dataset.n_interactions:,} "
            f"interactions; recommend n=10 for {n_batch} users in one batch; 1 BLAS thread"
        )
        for col in (
            "model",
            "fit s",
            "users/s",
            "fit vs implicit ALS",
            "fit vs numpy EASE",
            "users/s vs implicit ALS",
            "users/s vs numpy EASE",
        ):
            table.add_column(col)
        rows: list[tuple[str, float, float]] = []
        x = dataset.matrix("binary")
        # Reference 1: implicit's own ALS, its own batch recommend.
        ref = AlternatingLeastSquares(factors=64, iterations=15, num_threads=1, random_state=0)
        start = time.perf_counter()
        ref.fit(x.astype(np.float32), show_progress=False)
        ref_fit = time.perf_counter() - start
        start = time.perf_counter()
        ref.recommend(np.arange(n_batch), x[:n_batch], N=10, filter_already_liked_items=True)
        ref_ups = n_batch / (time.perf_counter() - start)
        rows.append(("implicit ALS (reference)", ref_fit, ref_ups))
        # Reference 2: plain numpy EASE, scores for the batch + argpartition.
        start = time.perf_counter()
        b = plain_ease(x, 300.0)
        ease_fit = time.perf_counter() - start
        start = time.perf_counter()
        s = np.asarray(x[:n_batch] @ b)
        s[x[:n_batch].nonzero()] = -np.inf
        np.argpartition(-s, 10, axis=1)[:, :10]
        ease_ups = n_batch / (time.perf_counter() - start)
        rows.append(("numpy EASE (reference)", ease_fit, ease_ups))
        models: list[tuple[str, Recommender]] = [
            ("MostPopular", MostPopular()),
            ("GroupPopular", GroupPopular()),
            ("ItemKNN", ItemKNN()),
            ("EASE", EASE()),
            ("ALS", ALS(factors=64, iterations=15)),
            ("ContentBased", ContentBased()),
            ("FeatureCF", FeatureCF()),
            ("Hybrid", Hybrid()),
            ("ColdStartRouter", ColdStartRouter()),
        ]
        for name, model in models:
            start = time.perf_counter()
            model.fit(dataset, groups=groups)
            fit_s = time.perf_counter() - start
            start = time.perf_counter()
            model.recommend(users, n=10)
            rows.append((name, fit_s, n_batch / (time.perf_counter() - start)))
            console.print(f"  [dim]{label}: {name} fit {fit_s:.2f} s[/]")
        for name, fit_s, ups in rows:
            table.add_row(
                name,
                f"{fit_s:.2f}",
                f"{ups:,.0f}",
                f"{fit_s / ref_fit:.2f}x",
                f"{fit_s / ease_fit:.2f}x",
                f"{ups / ref_ups:.2f}x",
                f"{ups / ease_ups:.2f}x",
            )
        console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["speed", "quality"], nargs="?", default="speed")
    parser.add_argument("--interactions", type=int, default=1_000_000, help="size of the synthetic set (speed)")
    args = parser.parse_args()
    console.print(f"load average at start: {os.getloadavg()[0]:.2f} (the machine may be shared: compare ratios)")
    if args.what == "quality":
        quality()
    else:
        speed(args.interactions)
    console.print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
