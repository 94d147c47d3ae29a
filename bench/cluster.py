"""Speed of group discovery at scale: k-means engines and kNN-graph builders, ratios within one run.

    python bench/cluster.py                                   # N = 100,000 and 1,000,000 x 384, k = 100
    python bench/cluster.py --sizes 100000 --knn-n 20000      # a quick run
    python bench/cluster.py --json docs/results/cluster.json  # also keep the numbers

k-means: ours (``KMeansGroups``, faiss engine, and the numpy engine up to 200k rows), faiss ``Kmeans`` on all
rows and with its default 256-rows-per-centroid sample, sklearn ``MiniBatchKMeans`` and sklearn ``KMeans``
(Lloyd). Every engine gets one run (n_init = 1), at most ``--iters`` iterations (MiniBatchKMeans: at most
``--iters`` passes over the data, it stops earlier by itself) and ``--threads`` threads. The objective is
computed the same way for every engine from its labels: the k-means objective (sum of squared distances to
the group means) and the spherical one (sum of 1 - cos to the group's mean direction).

kNN graph (k = 20 neighbours of every row): ours (``knn_graph``'s cells join over spherical k-means cells,
at its default 20 probes and at 12), faiss HNSW, pynndescent (its numba compile time measured separately
on a tiny input); with ``--exact`` / ``--ivf`` also exact search (faiss flat) and our IVF index engine.
Recall@20 is measured on ``--queries`` random rows against exact neighbours.
Memory is the peak resident memory added by the build (the kernel's high-water mark is
reset before each row, so rows do not see each other's peaks).

Data: synthetic unit vectors shaped like sentence embeddings: 200 centres (25 topics x 8 sub-topics,
cosine ~0.7 to their topic), cluster sizes drawn log-normally, noise with a decaying spectrum (effective
dimension ~40) scaled per cluster so a member's cosine to its centre is ~0.45-0.65. Seeded; generated in
blocks straight into one float32 array (1M x 384 = 1.5 GB, no other copy is made).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import scipy.sparse as sp

import personas.discover  # noqa: F401  (sets the OpenBLAS hint before faiss loads)


# ---------------------------------------------------------------------------------------------- data
def synthetic(n: int, dim: int, *, n_topics: int = 25, per_topic: int = 8, seed: int = 0) -> np.ndarray:
    """``n`` unit float32 rows around ``n_topics * per_topic`` centres (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n_centres = n_topics * per_topic
    topics = rng.normal(size=(n_topics, dim))
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    centres = topics[np.arange(n_centres) // per_topic] + rng.normal(size=(n_centres, dim)) / np.sqrt(dim)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = rng.lognormal(0.0, 0.7, size=n_centres)
    spectrum = (np.arange(dim) + 1.0) ** -0.35  # few strong directions, a long tail: like real embeddings
    spectrum /= np.linalg.norm(spectrum)
    spread = rng.uniform(1.2, 2.0, size=n_centres)  # |noise| / |centre| per cluster: cosine ~0.45-0.65
    x = np.empty((n, dim), dtype=np.float32)
    block = 50_000
    for start in range(0, n, block):
        m = min(block, n - start)
        member = rng.choice(n_centres, size=m, p=weights / weights.sum())
        rows = centres[member] + rng.normal(size=(m, dim)) * spectrum * spread[member, None]
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        x[start : start + m] = rows
    return x


# ---------------------------------------------------------------------------------------------- measuring
def _status(key: str) -> float:
    """A VmXXX line of /proc/self/status, in MiB."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


PEAK_MIB = [0.0]  # the largest resident size seen at the end of any measured block


@dataclass
class Row:
    name: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    extra_mib: float = 0.0
    values: dict[str, float] = field(default_factory=dict)
    note: str = ""


@contextlib.contextmanager
def measured(row: Row) -> Iterator[Row]:
    """Wall and CPU time of the block, and the peak memory it added above the memory at its start."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")  # reset the high-water mark to the current resident size
    base = _status("VmRSS")
    wall, cpu = time.perf_counter(), time.process_time()
    yield row
    row.wall_s = time.perf_counter() - wall
    row.cpu_s = time.process_time() - cpu
    peak = _status("VmHWM")
    row.extra_mib = max(0.0, peak - base)
    PEAK_MIB[0] = max(PEAK_MIB[0], peak)


def objectives(x: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(k-means objective: sum |x - mean of its group|^2, spherical: sum 1 - cos(x, group direction)),
    from the groups' sums in float64; rows are unit vectors, so sum |x|^2 = n."""
    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1
    sums = np.zeros((k, x.shape[1]))
    for start in range(0, len(x), 100_000):
        lab = labels[start : start + 100_000]
        onehot = sp.csr_matrix((np.ones(len(lab)), (lab, np.arange(len(lab)))), shape=(k, len(lab)))
        sums += onehot @ x[start : start + 100_000].astype(np.float64)
    counts = np.bincount(labels, minlength=k)
    sq = (sums**2).sum(axis=1)
    sse = float(len(x) - np.sum(sq[counts > 0] / counts[counts > 0]))
    cosine = float(len(x) - np.sqrt(sq).sum())
    return sse, cosine


def set_threads(n: int) -> Any:
    import faiss
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(n)
    with contextlib.suppress(ImportError):
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    return threadpool_limits(n)


# ---------------------------------------------------------------------------------------------- k-means
OURS = "ours: KMeansGroups (faiss engine, 10 sampled iterations)"


def kmeans_engines(x: np.ndarray, k: int, iters: int, seed: int) -> dict[str, Callable[[], np.ndarray]]:
    import faiss
    from sklearn.cluster import KMeans, MiniBatchKMeans

    from personas.discover import KMeansGroups

    n, d = x.shape

    def faiss_kmeans(per_centroid: int) -> np.ndarray:
        km = faiss.Kmeans(d, k, niter=iters, seed=seed, spherical=True, max_points_per_centroid=per_centroid)
        km.train(x)
        return km.index.search(x, 1)[1].ravel()

    def ours(refine: int) -> np.ndarray:
        config = {"n_init": 1, "max_iter": min(10, iters), "refine_iter": refine, "engine": "faiss", "seed": seed}
        return KMeansGroups(k=k, **config).fit(x).labels_

    # Ours: k-means++ seeding on a sample, 10 iterations on 256 rows per group, then labels from one pass
    # over all rows; the second row adds 2 iterations over all rows. Both stay under the iteration cap.
    engines: dict[str, Callable[[], np.ndarray]] = {
        OURS: lambda: ours(0),
        "ours, + 2 iterations on all rows": lambda: ours(2),
    }
    if n <= 200_000:  # a plain Lloyd loop over every row: minutes per run at 1M, and auto never picks it there
        engines["ours: KMeansGroups (numpy engine, Lloyd)"] = lambda: (
            KMeansGroups(k=k, n_init=1, max_iter=iters, engine="numpy", seed=seed).fit(x).labels_
        )
    engines["faiss Kmeans, all rows"] = lambda: faiss_kmeans(n // k + 1)
    engines["faiss Kmeans, default sample (256/centroid)"] = lambda: faiss_kmeans(256)
    engines["sklearn MiniBatchKMeans (batch 4096)"] = lambda: (
        MiniBatchKMeans(k, n_init=1, batch_size=4096, max_iter=iters, random_state=seed).fit(x).labels_
    )
    # Last: with copy_x=False sklearn centres the data in place (no 1.5 GB copy at 1M) and puts it back.
    engines["sklearn KMeans (Lloyd)"] = lambda: (
        KMeans(k, n_init=1, max_iter=iters, random_state=seed, algorithm="lloyd", copy_x=False).fit(x).labels_
    )
    return engines


def run_kmeans(x: np.ndarray, k: int, iters: int, seed: int, skip: set[str]) -> list[Row]:
    rows = []
    for name, fit in kmeans_engines(x, k, iters, seed).items():
        if any(s in name for s in skip):
            continue
        print(f"  k-means: {name} ...", file=sys.stderr, flush=True)
        with measured(Row(name)) as row:
            labels = fit()
        row.values["groups"] = float(len(np.unique(labels)))
        row.values["sse"], row.values["cosine"] = objectives(x, labels)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------- kNN graph
def exact_neighbours(x: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """The k most cosine-similar other rows of each query row, by blocked matrix products."""
    best_sim = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_id = np.zeros((len(queries), k), dtype=np.int64)
    q = x[queries]
    for start in range(0, len(x), 50_000):
        s = q @ x[start : start + 50_000].T
        inside = (queries >= start) & (queries < start + len(s.T))
        s[np.flatnonzero(inside), queries[inside] - start] = -np.inf  # not its own neighbour
        sims = np.concatenate([best_sim, s], axis=1)
        ids = np.concatenate([best_id, np.arange(start, start + s.shape[1])[None, :].repeat(len(q), 0)], axis=1)
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        best_sim = np.take_along_axis(sims, top, axis=1)
        best_id = np.take_along_axis(ids, top, axis=1)
    return best_id


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def _graph_rows(graph: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    out = np.full((len(rows), 20), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        nbrs = graph.indices[graph.indptr[r] : graph.indptr[r + 1]]
        out[i, : len(nbrs)] = nbrs[:20]
    return out


def knn_builders(x: np.ndarray, k: int, seed: int, threads: int, ivf: bool) -> dict[str, Callable[[], Any]]:
    import faiss

    from personas.discover import NeighboursConfig, knn_graph

    def hnsw(ef_search: int) -> np.ndarray:
        index = faiss.IndexHNSWFlat(x.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 64
        index.add(x)
        index.hnsw.efSearch = ef_search
        return index.search(x, k + 1)[1]

    def nndescent() -> np.ndarray:
        import pynndescent

        ids, _ = pynndescent.NNDescent(
            x, metric="cosine", n_neighbors=k + 1, random_state=seed, n_jobs=threads
        ).neighbor_graph
        return ids

    builders: dict[str, Callable[[], Any]] = {
        "ours: knn_graph, cells join (defaults: 20 probes)": lambda: knn_graph(
            x, k, symmetric=False, config=NeighboursConfig(engine="cells", seed=seed)
        ),
        "ours: knn_graph, cells join (12 probes)": lambda: knn_graph(
            x, k, symmetric=False, config=NeighboursConfig(engine="cells", join_probe=12, seed=seed)
        ),
        "faiss HNSW (M 32, efConstruction 64, efSearch 64)": lambda: hnsw(64),
        "pynndescent (cosine, 21 neighbours)": nndescent,
    }
    if ivf:  # faiss IVF search goes one query at a time: several times slower than the cells join
        builders["ours: KNNIndex IVF (nprobe 16), every row as a query"] = lambda: knn_graph(
            x, k, symmetric=False, config=NeighboursConfig(engine="ivf", nprobe=16, seed=seed)
        )
    return builders


def _drop_self(ids: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    out = np.full((len(rows), k), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        keep = ids[r][(ids[r] != r) & (ids[r] >= 0)][:k]
        out[i, : len(keep)] = keep
    return out


def run_knn(
    x: np.ndarray, k: int, n_queries: int, seed: int, threads: int, exact: bool, ivf: bool
) -> tuple[list[Row], Row]:
    rng = np.random.default_rng(seed)
    queries = np.sort(rng.choice(len(x), min(n_queries, len(x)), replace=False))
    truth = exact_neighbours(x, queries, k)
    rows = []
    compile_row = Row("pynndescent numba compile (first call, 2,000 rows)")
    try:
        import pynndescent

        with measured(compile_row):
            pynndescent.NNDescent(x[:2000], metric="cosine", n_neighbors=k + 1, random_state=seed, n_jobs=threads)
    except ImportError:
        compile_row.note = "pynndescent not installed: pip install 'personas[bench]'"
    builders = knn_builders(x, k, seed, threads, ivf)
    if exact:
        from personas.discover import NeighboursConfig, knn_graph

        builders = {
            "exact (faiss flat, reference)": lambda: knn_graph(
                x, k, symmetric=False, config=NeighboursConfig(engine="exact")
            ),
            **builders,
        }
    for name, build in builders.items():
        if name.startswith("pynndescent") and compile_row.note:
            continue
        print(f"  kNN: {name} ...", file=sys.stderr, flush=True)
        with measured(Row(name)) as row:
            result = build()
        found = _graph_rows(result, queries) if sp.issparse(result) else _drop_self(result, queries, k)
        row.values["recall"] = recall(found, truth)
        rows.append(row)
        del result
    return rows, compile_row


# ---------------------------------------------------------------------------------------------- report
def _kmeans_table(rows: list[Row]) -> list[str]:
    ours = next(r for r in rows if r.name == OURS)
    lines = [
        "| engine | wall s | CPU s | extra MiB | groups | k-means objective | / ours | spherical objective "
        "| / ours | ours' time / this |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.wall_s:.1f} | {r.cpu_s:.1f} | {r.extra_mib:.0f} | {r.values['groups']:.0f} | "
            f"{r.values['sse']:,.1f} | {r.values['sse'] / ours.values['sse']:.4f} | {r.values['cosine']:,.1f} | "
            f"{r.values['cosine'] / ours.values['cosine']:.4f} | {ours.wall_s / r.wall_s:.2f} |"
        )
    return lines


def _kmeans_targets(rows: list[Row]) -> list[str]:
    by = {r.name: r for r in rows}
    ours = by[OURS]
    refs = [by[n] for n in by if n.startswith(("faiss", "sklearn MiniBatch"))]
    out = []
    for ref in refs:
        better = ours.values["sse"] <= ref.values["sse"] * (1 + 1e-4)
        out.append(
            f"- vs {ref.name}: ours takes {ours.wall_s / ref.wall_s:.2f}x its time at "
            f"{ours.values['sse'] / ref.values['sse']:.4f}x its objective "
            f"({'equal or better' if better else 'WORSE'} objective)"
        )
    fair = [r for r in refs if ours.values["sse"] <= r.values["sse"] * (1 + 1e-4)]
    if fair:
        fastest = min(fair, key=lambda r: r.wall_s)
        ok = ours.wall_s <= 1.2 * fastest.wall_s
        out.append(
            f"- target (<= 1.2x the fastest of faiss / MiniBatchKMeans at equal or better objective: "
            f"{fastest.name}): {ours.wall_s / fastest.wall_s:.2f}x -> {'met' if ok else 'NOT met'}"
        )
    if "sklearn KMeans (Lloyd)" in by:
        ratio = by["sklearn KMeans (Lloyd)"].wall_s / ours.wall_s
        out.append(f"- target (>= 4x faster than sklearn KMeans): {ratio:.1f}x -> {'met' if ratio >= 4 else 'NOT met'}")
    return out


def _knn_table(rows: list[Row], compile_row: Row) -> list[str]:
    lines = ["| method | wall s | CPU s | extra MiB | recall@20 |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.name} | {r.wall_s:.1f} | {r.cpu_s:.1f} | {r.extra_mib:.0f} | {r.values['recall']:.4f} |")
    if compile_row.note:
        lines.append(f"\n{compile_row.note}")
    else:
        lines.append(
            f"\n{compile_row.name}: {compile_row.wall_s:.1f} s wall (paid once per process; numba caches part of it "
            "on disk); not included in the pynndescent row."
        )
    ours = [r for r in rows if r.name.startswith("ours")]
    others = [r for r in rows if r.name.startswith(("faiss HNSW", "pynndescent"))]
    good = [r for r in ours if r.values["recall"] >= 0.99]
    if good and others:
        best = min(good, key=lambda r: r.wall_s)
        fastest = min(others, key=lambda r: r.wall_s)
        lines.append(
            f"\n- target (recall@20 >= 0.99 and no slower than the faster of HNSW / pynndescent): {best.name} "
            f"recall {best.values['recall']:.4f} in {best.wall_s / fastest.wall_s:.2f}x the time of {fastest.name} "
            f"(recall {fastest.values['recall']:.4f}) -> {'met' if best.wall_s <= fastest.wall_s else 'NOT met'}"
        )
    elif others:
        lines.append("\n- target: NOT met (no engine of ours reached recall@20 >= 0.99)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="k-means N")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--iters", type=int, default=20, help="iteration cap, the same for every engine")
    parser.add_argument("--knn-n", type=int, default=100_000, help="rows of the kNN-graph comparison (0: skip)")
    parser.add_argument("--queries", type=int, default=2000, help="rows whose recall@20 is checked")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--exact", action="store_true", help="also time the exact kNN graph (n^2: slow)")
    parser.add_argument("--ivf", action="store_true", help="also time the IVF index engine as a graph builder")
    parser.add_argument("--skip", nargs="*", default=[], help="skip k-means engines whose name contains this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write every number here")
    args = parser.parse_args()

    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    print(
        f"# bench/cluster.py: {' '.join(sys.argv[1:]) or '(defaults)'}\n\n"
        f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {args.threads} thread(s) per engine; "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    knn_x: np.ndarray | None = None
    with set_threads(args.threads):
        for n in args.sizes:
            t0 = time.perf_counter()
            x = synthetic(n, args.dim, seed=args.seed)
            print(
                f"\n## k-means, N = {n:,} x {args.dim}, k = {args.k}, n_init = 1, <= {args.iters} iterations "
                f"(data made in {time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.2f})\n",
                flush=True,
            )
            rows = run_kmeans(x, args.k, args.iters, args.seed, set(args.skip))
            print("\n".join(_kmeans_table(rows)))
            print("\n" + "\n".join(_kmeans_targets(rows)), flush=True)
            results[f"kmeans_{n}"] = [asdict(r) for r in rows]
            _save(args.json, results)
            if n == args.knn_n:
                knn_x = x
            del x
        if args.knn_n:
            if knn_x is None:
                knn_x = synthetic(args.knn_n, args.dim, seed=args.seed)
            print(
                f"\n## kNN graph, N = {args.knn_n:,} x {args.dim}, 20 neighbours per row; recall@20 on "
                f"{min(args.queries, args.knn_n):,} random rows against exact search "
                f"(load average {os.getloadavg()[0]:.2f})\n",
                flush=True,
            )
            knn_rows, compile_row = run_knn(
                knn_x, 20, args.queries, args.seed, args.threads, exact=args.exact, ivf=args.ivf
            )
            print("\n".join(_knn_table(knn_rows, compile_row)))
            results["knn"] = [asdict(r) for r in knn_rows]
            results["pynndescent_compile"] = asdict(compile_row)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}; peak resident memory {PEAK_MIB[0]:.0f} MiB")
    _save(args.json, results)


def _save(path: Path | None, results: dict[str, Any]) -> None:
    """Write what is measured so far (after every section: a long run that stops keeps its numbers)."""
    from personas._files import write_atomic

    if path is not None:
        write_atomic(path, json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
