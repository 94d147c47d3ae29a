"""Which columnar engine reads, validates and groups interactions fastest: Arrow compute + numpy (what
personas.data.columnar uses), Polars, DuckDB, and pandas (no columnar engine) on the same task.

    python bench/columnar.py                      # 10^5 users, 2 x 10^6 interaction rows
    python bench/columnar.py --users 1000000      # 2 x 10^7 rows

The task, identical for every engine, on the synthetic Parquet files of bench/scale.py (written once per size):
read the interactions and items; check that every user and item id is present and non-empty and every rating
a number (counting the bad rows); keep ratings >= 4; per user, newest first (ties: title), join the liked
titles into one string "liked: A; B; ...". Every engine must produce the same strings (checked by a digest).
Each engine runs in its own process on 2 threads; time is its wall time for the task, peak its resident
memory (imports included).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

THREADS = "2"
ENGINES = ("arrow", "polars", "duckdb", "pandas")


def task_arrow(folder: Path) -> tuple[list[str], list[str], int]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pa.set_cpu_count(int(THREADS))
    inter = pq.read_table(folder / "interactions.parquet", columns=["user_id", "item_id", "rating", "timestamp"])
    items = pq.read_table(folder / "items.parquet", columns=["item_id", "title"])
    bad = 0
    for name in ("user_id", "item_id"):
        column = inter[name]
        bad += column.null_count + pc.sum(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(column)), 0)).as_py()
    bad += inter["rating"].null_count
    liked = inter.filter(pc.greater_equal(inter["rating"], 4.0))
    users = pc.unique(liked["user_id"])
    user_rows = pc.index_in(liked["user_id"], value_set=users).to_numpy()
    item_rows = pc.index_in(liked["item_id"], value_set=items["item_id"]).to_numpy()
    titles = items["title"].combine_chunks()
    # title rank breaks timestamp ties: one int64 key, one stable sort
    title_rank = np.argsort(np.argsort(titles.to_numpy(zero_copy_only=False)))
    times = liked["timestamp"].to_numpy()
    span = int(times.max() - times.min()) + 1
    key = (user_rows.astype(np.int64) * span + (times.max() - times)) * len(titles) + title_rank[item_rows]
    order = np.argsort(key, kind="stable")
    counts = np.bincount(user_rows, minlength=len(users))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    lists = pa.LargeListArray.from_arrays(pa.array(offsets), titles.take(pa.array(item_rows[order])))
    text = pc.binary_join_element_wise("liked: ", pc.binary_join(lists, "; "), "")
    return users.to_pylist(), text.to_pylist(), bad


def task_polars(folder: Path) -> tuple[list[str], list[str], int]:
    import polars as pl

    inter = pl.read_parquet(folder / "interactions.parquet", columns=["user_id", "item_id", "rating", "timestamp"])
    items = pl.read_parquet(folder / "items.parquet", columns=["item_id", "title"])
    bad = inter.select(
        (pl.col("user_id").is_null() | (pl.col("user_id").str.strip_chars().str.len_chars() == 0)).sum()
        + (pl.col("item_id").is_null() | (pl.col("item_id").str.strip_chars().str.len_chars() == 0)).sum()
        + pl.col("rating").is_null().sum()
    ).item()
    out = (
        inter.filter(pl.col("rating") >= 4.0)
        .join(items, on="item_id", how="inner")
        .sort(["user_id", "timestamp", "title"], descending=[False, True, False])
        .group_by("user_id", maintain_order=True)
        .agg(pl.lit("liked: ") + pl.col("title").str.join("; "))
    )
    return out["user_id"].to_list(), out["literal"].to_list(), int(bad)


def task_duckdb(folder: Path) -> tuple[list[str], list[str], int]:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {THREADS}")
    inter, items = folder / "interactions.parquet", folder / "items.parquet"
    bad = con.execute(
        f"""SELECT count(*) FILTER (WHERE user_id IS NULL OR trim(user_id) = '')
                 + count(*) FILTER (WHERE item_id IS NULL OR trim(item_id) = '')
                 + count(*) FILTER (WHERE rating IS NULL)
            FROM read_parquet('{inter}')"""
    ).fetchone()
    rows = con.execute(
        f"""SELECT i.user_id, 'liked: ' || string_agg(t.title, '; ' ORDER BY i.timestamp DESC, t.title)
            FROM read_parquet('{inter}') i JOIN read_parquet('{items}') t USING (item_id)
            WHERE i.rating >= 4 GROUP BY i.user_id"""
    ).fetchall()
    return [r[0] for r in rows], [r[1] for r in rows], int(bad[0] if bad else 0)


def task_pandas(folder: Path) -> tuple[list[str], list[str], int]:
    import pandas as pd

    inter = pd.read_parquet(folder / "interactions.parquet", columns=["user_id", "item_id", "rating", "timestamp"])
    items = pd.read_parquet(folder / "items.parquet", columns=["item_id", "title"])
    bad = 0
    for name in ("user_id", "item_id"):
        bad += int((inter[name].isna() | inter[name].str.strip().eq("")).sum())
    bad += int(inter["rating"].isna().sum())
    liked = inter[inter["rating"] >= 4.0].merge(items, on="item_id")
    liked = liked.sort_values(["user_id", "timestamp", "title"], ascending=[True, False, True], kind="stable")
    out = liked.groupby("user_id", sort=False)["title"].agg("; ".join)
    return out.index.tolist(), ("liked: " + out).tolist(), bad


def child(engine: str, folder: Path) -> dict[str, Any]:
    start = time.perf_counter()
    users, texts, bad = globals()[f"task_{engine}"](folder)
    seconds = time.perf_counter() - start
    digest = hashlib.sha256("\n".join(f"{u}\t{t}" for u, t in sorted(zip(users, texts, strict=True))).encode())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KB -> GB (Linux)
    return {
        "engine": engine,
        "seconds": seconds,
        "peak_gb": peak,
        "users": len(users),
        "bad": bad,
        "digest": digest.hexdigest()[:12],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "personas-scale"))
    parser.add_argument("--engine", help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    folder = Path(args.data) / f"n{args.users}"
    if args.engine:
        print(json.dumps(child(args.engine, folder)))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from scale import make_data

    make_data(args.users, folder)
    env = {**os.environ, "POLARS_MAX_THREADS": THREADS, "OMP_NUM_THREADS": THREADS}
    print(f"load average at start: {os.getloadavg()}")
    rows = []
    for engine in args.engines.split(","):
        cmd = [sys.executable, __file__, "--engine", engine, "--users", str(args.users), "--data", args.data]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False, env=env)
        if done.returncode:
            print(f"{engine}: failed (exit {done.returncode})", file=sys.stderr)
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"  {engine}: {rows[-1]['seconds']:.2f} s", file=sys.stderr, flush=True)
    base = next((r["seconds"] for r in rows if r["engine"] == "arrow"), rows[0]["seconds"])
    n_rows = args.users * 20
    print(f"\n{args.users:,} users, {n_rows:,} interaction rows\n")
    print("| engine | task s | vs arrow | peak GB | users | bad rows | same strings |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        same = "yes" if r["digest"] == rows[0]["digest"] else f"NO ({r['digest']})"
        print(
            f"| {r['engine']} | {r['seconds']:.2f} | {r['seconds'] / base:.2f}x | {r['peak_gb']:.2f} | "
            f"{r['users']:,} | {r['bad']} | {same} |"
        )
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
