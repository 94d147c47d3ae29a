"""The pipeline at scale: single machine vs Spark local[2] on synthetic data, time and peak memory per stage.

    python bench/scale.py                          # 10^4 and 10^5 users, both engines
    python bench/scale.py --users 1000000 --engines local,spark
    python bench/scale.py --users 10000000 --engines spark --driver-memory 4g
    python bench/scale.py --users 10000000 --engines stream --memory-budget 4GB   # streamed single machine

Data: ``n`` users in 16 latent tastes, 2,000 items, 20 interactions per user drawn from the user's taste
(80%) or global popularity (20%), written as Parquet; precomputed 32-d user vectors (taste direction plus
noise, unit length), so encoding is not timed. Both engines run the same stages on the same files: load,
profile texts, discover (k-means, k=16), describe (keywords, distinctive items, representatives), fit
group-popular and most-popular, write the run folder. Each engine runs in its own process; a sampler reads
the resident memory of that process and all its children (Spark's JVM and Python workers) every 0.02 s,
giving the peak per stage, and once more as each stage ends ("held": what the stage leaves to the next ones;
the "process total" peak is its highest stage's). The single-machine column "n x n GB" is what one float32
n x n matrix would take: the peak stays far below it and grows linearly with n.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

N_ITEMS = 2_000
N_TASTES = 16
PER_USER = 20
DIM = 32
K = 16
CHUNK = 1_000_000  # users generated and written at a time


class PeakMemory:
    """Peak resident memory (this process + children), sampled in a thread, reset per stage."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        total = 0
        for proc in [self.process, *self.process.children(recursive=True)]:
            with suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.02)  # short-lived arrays (a sort's buffer) last tenths of a second

    def reset(self) -> None:
        self.peak = self._rss()

    def now(self) -> int:
        return self._rss()

    def stop(self) -> None:
        self._stop.set()


def make_data(n_users: int, folder: Path, seed: int = 0) -> dict[str, Path]:
    """Synthetic Parquet files (written once per size) and the precomputed vectors.

    Written ``CHUNK`` users at a time (10^7 users are 2 x 10^8 interactions: no single frame holds them), each
    file under a temporary name renamed when complete, so an interrupted run never leaves a file a later run
    would take for finished. Up to ``CHUNK`` users the random draws are those of one frame."""
    import pyarrow as pa

    folder.mkdir(parents=True, exist_ok=True)
    paths = {k: folder / f"{k}.parquet" for k in ("interactions", "items", "users", "vectors")}
    if all(p.exists() for p in paths.values()):
        return paths
    rng = np.random.default_rng(seed)
    taste = rng.integers(N_TASTES, size=n_users)
    popularity = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.8
    popularity /= popularity.sum()
    liked = np.asarray([rng.choice(N_ITEMS, size=60, replace=False) for _ in range(N_TASTES)])
    chunks = [(a, min(a + CHUNK, n_users)) for a in range(0, n_users, CHUNK)]

    def interactions(a: int, b: int) -> pa.Table:
        users = np.repeat(np.arange(a, b), PER_USER)
        from_taste = rng.random(len(users)) < 0.8
        items = rng.choice(N_ITEMS, size=len(users), p=popularity)
        pick = rng.integers(60, size=len(users))
        items[from_taste] = liked[taste[users[from_taste]], pick[from_taste]]
        return pa.table(
            {
                "user_id": users.astype(str),
                "item_id": items.astype(str),
                "rating": rng.integers(1, 6, size=len(users)).astype(float),
                "timestamp": rng.integers(10**9, 10**9 + 10**7, size=len(users)),
            }
        )

    _write_parts(paths["interactions"], (interactions(a, b) for a, b in chunks))
    genres = np.array(["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Western", "Documentary"])
    items_table = pa.table(
        {
            "item_id": np.arange(N_ITEMS).astype(str),
            "title": [f"Film {i} {genres[i % 8].lower()} story" for i in range(N_ITEMS)],
            "genres": genres[np.arange(N_ITEMS) % 8],
        }
    )
    _write_parts(paths["items"], [items_table])
    ages = rng.integers(15, 70, size=n_users).astype(str)
    genders = rng.choice(["M", "F"], size=n_users)
    _write_parts(
        paths["users"],
        (
            pa.table({"user_id": np.arange(a, b).astype(str), "age": ages[a:b], "gender": genders[a:b]})
            for a, b in chunks
        ),
    )
    centres = rng.normal(size=(N_TASTES, DIM))

    def vectors(a: int, b: int) -> pa.Table:
        block = centres[taste[a:b]] + 0.9 * rng.normal(size=(b - a, DIM))
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        flat = pa.array(block.astype(np.float32).ravel())
        lists = pa.ListArray.from_arrays(pa.array(np.arange(0, (b - a) * DIM + 1, DIM, dtype=np.int32)), flat)
        return pa.table({"user_id": np.arange(a, b).astype(str), "vector": lists})

    _write_parts(paths["vectors"], (vectors(a, b) for a, b in chunks))
    return paths


def _write_parts(path: Path, tables: Iterable[Any]) -> None:
    """Tables appended to one Parquet file, written under a temporary name and renamed when complete."""
    import pyarrow.parquet as pq

    from personas._files import atomic_path

    with atomic_path(path) as partial:
        writer = None
        try:
            for table in tables:
                writer = writer or pq.ParquetWriter(partial, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()


@contextmanager
def timed(name: str, rows: list[dict[str, Any]], memory: PeakMemory) -> Iterator[None]:
    memory.reset()
    start, cpu = time.perf_counter(), time.process_time()
    yield
    rows.append(
        {
            "stage": name,
            "seconds": time.perf_counter() - start,
            # CPU of this Python process, all its threads (not Spark's JVM): on a shared machine it moves less
            "cpu_s": time.process_time() - cpu,
            "peak_gb": memory.peak / 1e9,
            # what the stage leaves held (resident at its end): the floor of the stages after it
            "held_gb": memory.now() / 1e9,
        }
    )
    print(
        f"  {name}: {rows[-1]['seconds']:.1f} s (CPU {rows[-1]['cpu_s']:.1f} s), peak {rows[-1]['peak_gb']:.2f} GB,"
        f" held after {rows[-1]['held_gb']:.2f} GB",
        file=sys.stderr,
        flush=True,
    )


def run_local(paths: dict[str, Path], out: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from personas.data import build_profiles, load_dataset
    from personas.describe import describe_groups
    from personas.discover import KMeansGroups
    from personas.recommend.base import MostPopular
    from personas.recommend.popular import GroupPopular

    rows: list[dict[str, Any]] = []
    memory = PeakMemory()
    with timed("load", rows, memory):
        dataset, _ = load_dataset(paths["interactions"], users=paths["users"], items=paths["items"])
        table = pq.read_table(paths["vectors"])
        order = dataset.user_vocab.rows(table["user_id"].to_numpy())
        vectors = np.empty((dataset.n_users, DIM), dtype=np.float32)
        vectors[order] = pc.list_flatten(table["vector"]).to_numpy().reshape(-1, DIM)  # no object per user
        del table, order
        pa.default_memory_pool().release_unused()  # Arrow's allocator would keep the table's pages (~0.3 GB)
    with timed("profile texts", rows, memory):
        texts = build_profiles(dataset)
    with timed("discover", rows, memory):
        labels = KMeansGroups(k=K, seed=0).fit(vectors).labels_
    with timed("describe", rows, memory):
        describe_groups(labels, texts=texts, vectors=vectors, dataset=dataset)
    with timed("recommenders", rows, memory):
        models = {
            "most-popular": MostPopular().fit(dataset),
            "group-popular": GroupPopular().fit(dataset, groups=labels),
        }
    with timed("write", rows, memory):
        for name, model in models.items():
            model.save(out / name)
    memory.stop()
    return rows


def vectors_npy(paths: dict[str, Path]) -> Path:
    """The precomputed vectors as a .npy in user order (the streamed engine memory-maps it), written once per
    size, a row group at a time, under a temporary name renamed when complete."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from personas._files import atomic_path

    target = paths["vectors"].with_suffix(".npy")
    if target.exists():
        return target
    source = pq.ParquetFile(paths["vectors"])
    n = source.metadata.num_rows
    with atomic_path(target, suffix=".npy") as partial:
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(n, DIM))
        start = 0
        for group in range(source.num_row_groups):
            table = source.read_row_group(group)  # the generator writes users in order: row = user
            block = pc.list_flatten(table["vector"]).to_numpy().reshape(-1, DIM)
            out[start : start + len(block)] = block
            start += len(block)
        out.flush()
        del out
    return target


def run_stream(paths: dict[str, Path], out: Path, memory_budget: str) -> list[dict[str, Any]]:
    """The streamed single-machine engine (personas.pipeline.streamed) on the same files and vectors."""
    from personas.pipeline import PipelineConfig
    from personas.pipeline.streamed import StreamedPipeline

    vectors = vectors_npy(paths)
    rows: list[dict[str, Any]] = []
    memory = PeakMemory()
    config = PipelineConfig.model_validate(
        {
            "streaming": "on",
            "memory_budget": memory_budget,
            "data": {"interactions": paths["interactions"], "users": paths["users"], "items": paths["items"]},
            "discover": {"k": K, "seed": 0},
            "recommend": {"models": ["most-popular", "group-popular"]},
            "evaluate": {"enabled": False},
            "output": {"dir": str(out / "run"), "report": False},
        }
    )
    pipeline = StreamedPipeline(config, vectors=vectors)
    stage = pipeline.stage

    @contextmanager
    def both(name: str) -> Iterator[None]:
        with timed(name, rows, memory), stage(name):
            yield

    pipeline.stage = both  # type: ignore[method-assign]
    result = pipeline.run()
    print(f"  chunks of {result.plan.chunk_users:,} users, k-means sample {result.plan.sample:,}", file=sys.stderr)
    memory.stop()
    return rows


def run_spark(paths: dict[str, Path], out: Path, driver_memory: str) -> list[dict[str, Any]]:
    from personas.pipeline import PipelineConfig
    from personas.spark import SparkKMeansConfig, SparkPipeline, spark_session

    rows: list[dict[str, Any]] = []
    memory = PeakMemory()
    with timed("session start", rows, memory):
        spark = spark_session(
            "local[2]",
            conf={"spark.driver.memory": driver_memory, "spark.sql.shuffle.partitions": "8"},
        )
    config = PipelineConfig.model_validate(
        {
            "engine": "spark",
            "data": {"interactions": paths["interactions"], "users": paths["users"], "items": paths["items"]},
            "discover": {"k": K, "seed": 0},
            "recommend": {"models": ["most-popular", "group-popular"]},
            "evaluate": {"enabled": False},
            "output": {"dir": str(out / "run"), "report": False},
        }
    )
    pipeline = SparkPipeline(config, spark=spark, kmeans=SparkKMeansConfig(k=K, seed=0, seed_iter=10))
    stage = pipeline._clock.stage

    @contextmanager
    def both(name: str) -> Iterator[None]:
        with timed(name, rows, memory), stage(name):
            yield

    pipeline._clock.stage = both  # type: ignore[method-assign]
    pipeline.run(vectors=spark.read.parquet(str(paths["vectors"])))
    memory.stop()
    spark.stop()
    return rows


def child(args: argparse.Namespace) -> None:
    paths = make_data(args.users, Path(args.data) / f"n{args.users}")
    with tempfile.TemporaryDirectory(prefix="personas-scale-") as tmp:
        if args.engine == "local":
            rows = run_local(paths, Path(tmp))
        elif args.engine == "stream":
            rows = run_stream(paths, Path(tmp), args.memory_budget)
        else:
            rows = run_spark(paths, Path(tmp), args.driver_memory)
    print(json.dumps(rows))


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (users, stage): seconds and peak GB per engine, the Spark/local time ratio, n x n GB."""
    units = {"seconds": "s", "cpu_s": "CPU s", "peak_gb": "peak GB", "held_gb": "held GB"}
    values = [v for v in units if v in frame.columns]
    wide = frame.pivot_table(index=["users", "stage"], columns="engine", values=values, sort=False)
    wide.columns = [f"{engine} {units[what]}" for what, engine in wide.columns]
    wide = wide.reset_index()
    if {"local s", "spark s"} <= set(wide.columns):
        wide["spark/local time"] = wide["spark s"] / wide["local s"]
    wide["n x n float32 GB"] = wide["users"].astype(float) ** 2 * 4 / 1e9
    return wide


def markdown(table: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:,.2f}"
        return f"{value:,}" if isinstance(value, int | np.integer) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--engines", default="local,spark")
    parser.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "personas-scale"))
    parser.add_argument("--driver-memory", default="3g")
    parser.add_argument("--memory-budget", default="4GB", help="the streamed engine's memory_budget")
    parser.add_argument("--engine", help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.engine:
        args.users = args.users[0]
        child(args)
        return
    print(f"load average at start: {os.getloadavg()}")
    results: list[dict[str, Any]] = []
    for n in args.users:
        make_data(n, Path(args.data) / f"n{n}")
        for engine in args.engines.split(","):
            print(f"{engine}, {n:,} users...", file=sys.stderr, flush=True)
            cmd = [sys.executable, __file__, "--engine", engine, "--users", str(n), "--data", args.data]
            cmd += ["--driver-memory", args.driver_memory, "--memory-budget", args.memory_budget]
            start, before = time.perf_counter(), os.times()
            # stderr passes through: per-stage lines show as they finish, even if a long size is interrupted
            done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
            wall = time.perf_counter() - start
            after = os.times()  # the child's CPU (and its children's: Spark's JVM) once it has been waited for
            cpu = after.children_user + after.children_system - before.children_user - before.children_system
            if done.returncode != 0:
                results.append(
                    {"users": n, "engine": engine, "stage": "FAILED", "seconds": wall, "cpu_s": cpu, "peak_gb": np.nan}
                )
                continue
            stages = json.loads(done.stdout.strip().splitlines()[-1])
            for row in stages:
                results.append({"users": n, "engine": engine, **row})
            peak = max(row["peak_gb"] for row in stages)  # the process's peak: its highest stage
            total = {"stage": "process total", "seconds": wall, "cpu_s": cpu, "peak_gb": peak, "held_gb": np.nan}
            results.append({"users": n, "engine": engine, **total})
    frame = pd.DataFrame(results)
    print(markdown(summary(frame)))
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
