"""POST /users on a real `personas serve` process: micro-batching of new users' texts on vs off, in one run.

    .venv/bin/python bench/serve_writes.py --model runs/demo            # after `personas demo`
    .venv/bin/python bench/serve_writes.py --model runs/demo --workers 2 # server workers (passed to serve)

Each variant is its own server process (same run folder, its own SQLite file): "batching off"
(PERSONAS_SERVE_ENCODE_BATCH_MAX=1: each request encodes its own text) and "batching on" for each --wait-ms
(PERSONAS_SERVE_ENCODE_BATCH_WAIT_MS; the default batch cap, 32). The variants take turns within each load:
- sequential: one client, back to back (latency of a lone request);
- saturate xN: --concurrency clients back to back (throughput);
- fixed R/s: requests due on a fixed schedule, latency from when each was due (a server that cannot keep up
  shows it in the tail).
Bodies: --texts varied profile texts (a few words to ~150, some ruling something out, "..., but no horror"),
n=10. Server CPU per request is user + system CPU of the server process and its children (workers) from
/proc over the phase, so req/s per CPU core = requests / server CPU seconds; it moves far less with other load
on the machine than wall-clock figures. The load generator (bench/serve.py's keep-alive client) runs on the
same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import tempfile
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import uvloop
from rich.console import Console
from rich.table import Table

from personas.api.testing import ServerProcess
from serve import Connection, Result, fixed_rate, saturate, wait_until_idle  # bench/serve.py: the load generator

console = Console()

GENRES = [
    "science fiction", "westerns", "romantic comedies", "horror films", "documentaries", "film noir",
    "musicals", "war films", "animated films", "thrillers", "crime stories", "period dramas", "action films",
    "fantasy", "mysteries", "children's films",
]  # fmt: skip
PEOPLE = ["a retired engineer", "a student", "a nurse", "a teacher", "a programmer", "a farmer", "a lawyer"]


def profile_texts(count: int, seed: int = 0, *, short: bool = False) -> list[str]:
    """Varied new-user texts: a taste in two words, a sentence, a paragraph of 50-150 words, a negation (no
    paragraphs when ``short``)."""
    rng = np.random.default_rng(seed)
    texts = []
    kinds = [0, 1, 3] if short else [0, 1, 2, 3]
    for i in range(count):
        a, b, c = (str(g) for g in rng.choice(GENRES, size=3, replace=False))
        person = str(rng.choice(PEOPLE))
        kind = kinds[i % len(kinds)]
        if kind == 0:
            texts.append(a)
        elif kind == 1:
            texts.append(f"{person} who watches {a} and {b}, and now and then {c}")
        elif kind == 2:
            sentence = f"I am {person}; at the weekend I watch {a}, sometimes {b}, and I keep a list of {c}. "
            texts.append(sentence * int(rng.integers(3, 8)))
        else:
            texts.append(f"{a} or {b}, but no {c}")
    return texts


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children (server workers)."""
    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def measure(servers: dict[str, ServerProcess], args: argparse.Namespace) -> list[Result]:
    bodies = [json.dumps({"text": text, "n": 10}).encode() for text in profile_texts(args.texts, short=args.short)]

    def new_user(connection: Connection, i: int) -> Awaitable[int]:
        return connection.request("POST", "/users", bodies[i % len(bodies)])

    pools: dict[str, asyncio.Queue[Connection]] = {}
    for variant, server in servers.items():
        pool: asyncio.Queue[Connection] = asyncio.Queue()
        for _ in range(max(args.concurrency, args.connections)):
            pool.put_nowait(await Connection.open(server.host, server.port, server.headers))
        connection = await pool.get()
        for i in range(20):  # warm up: the encoder's first runs, the database
            assert await new_user(connection, i) == 201, f"{variant}: POST /users refused"
        pool.put_nowait(connection)
        pools[variant] = pool
    phases = [
        ("sequential", lambda pool: saturate(pool, new_user, 1, args.seconds)),
        (f"saturate x{args.concurrency}", lambda pool: saturate(pool, new_user, args.concurrency, args.seconds)),
        (f"fixed {args.rate:g}/s", lambda pool: fixed_rate(pool, new_user, args.rate, args.seconds)),
    ]
    results = []
    for index, (load, phase) in enumerate(phases):
        order = list(servers) if index % 2 == 0 else list(reversed(servers))  # none always goes first
        for variant in order:
            pid = servers[variant].process.pid  # type: ignore[union-attr]
            cpu = tree_cpu_seconds(pid)
            result = await phase(pools[variant])
            result.server_cpu_s = tree_cpu_seconds(pid) - cpu
            result.scenario, result.mode = variant, load
            results.append(result)
    for pool in pools.values():
        while not pool.empty():
            pool.get_nowait().close()
    return results


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    table = Table(
        title=(
            f"POST /users, micro-batching on vs off: {args.workers} server worker(s), {args.seconds:g} s per phase, "
            f"{args.texts} {'short ' if args.short else ''}profile texts, n=10"
        ),
        title_justify="left",
    )
    columns = ["load", "variant", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms"]
    columns += ["server CPU ms/req", "req/s per CPU core", "req/s / off", "CPU ms / off"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("load", "variant") else "right")
    off = {r.mode: r for r in results if r.scenario == "batching off"}
    variants = list(dict.fromkeys(r.scenario for r in results if r.mode == results[0].mode))
    for result in sorted(results, key=lambda r: (list(off).index(r.mode), variants.index(r.scenario))):
        base = off[result.mode]
        on = result.scenario != "batching off"  # the ratios: this variant over "batching off"
        table.add_row(
            result.mode,
            result.scenario,
            f"{result.requests:,}",
            str(result.errors),
            f"{result.throughput:.0f}",
            f"{result.percentile(50):.1f}",
            f"{result.percentile(95):.1f}",
            f"{result.percentile(99):.1f}",
            f"{result.cpu_ms:.2f}",
            f"{1000 / result.cpu_ms:.0f}" if result.cpu_ms > 0 else "",
            f"{result.throughput / base.throughput:.2f}" if on else "",
            f"{result.cpu_ms / base.cpu_ms:.2f}" if on else "",
        )
    console.print(table)


def _encode_rows(encoder: Any, texts: list[str]) -> list[np.ndarray]:
    from personas.encode import encode_queries

    return list(encode_queries(encoder, texts))


def encoder_alone(args: argparse.Namespace) -> None:
    """What micro-batching can save in the encoder itself, in this process: --concurrency threads each encoding
    texts through a MicroBatcher vs one call per text; for the run's encoder and for MiniLM fp32 ONNX in
    padded batches (an encoder whose forward pass batches). Max |difference| of the vectors beside it."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from personas.api.batching import MicroBatcher
    from personas.encode import OnnxEncoder, encode_queries
    from personas.pipeline import load_run

    texts = profile_texts(args.texts, short=args.short)
    encoders = {"the run's encoder": load_run(args.model).text_encoder()}
    for size in args.fp32_batches:
        encoders[f"MiniLM fp32 ONNX, passes of <= {size}"] = OnnxEncoder(quantize=False, batch_size=size, threads=1)
    table = Table(
        title=f"The encoder alone, in process: {len(texts)} texts x 2, {args.concurrency} threads",
        title_justify="left",
    )
    for column in ("encoder", "mode", "texts/s", "CPU ms/text", "mean batch", "CPU on/off", "max |diff|"):
        table.add_column(column, justify="left" if column in ("encoder", "mode") else "right")
    with threadpool_limits(1, user_api="blas"):
        for name, encoder in encoders.items():
            alone = {t: encode_queries(encoder, [t])[0] for t in texts}  # warm up, and the reference vectors
            rows = {}
            for mode, max_batch in (("one call per text", 1), ("micro-batched", 32)):
                batcher = MicroBatcher(functools.partial(_encode_rows, encoder), max_batch=max_batch)
                work = texts * 2
                start, cpu = time.perf_counter(), time.process_time()
                with ThreadPoolExecutor(args.concurrency) as pool:
                    vectors = list(pool.map(batcher.submit, work))
                wall, cpu = time.perf_counter() - start, time.process_time() - cpu
                batcher.close()
                diff = max(float(np.abs(v - alone[t]).max()) for t, v in zip(work, vectors, strict=True))
                rows[mode] = (len(work) / wall, 1000 * cpu / len(work), batcher.inputs / batcher.batches, diff)
            base = rows["one call per text"][1]
            for mode, (rate, cpu_ms, mean, diff) in rows.items():
                ratio = f"{cpu_ms / base:.2f}" if mode == "micro-batched" else ""
                table.add_row(name, mode, f"{rate:.0f}", f"{cpu_ms:.2f}", f"{mean:.1f}", ratio, f"{diff:.1e}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("runs/demo"), help="Run folder to serve.")
    parser.add_argument("--seconds", type=float, default=10.0, help="Length of each phase, per variant.")
    parser.add_argument("--rate", type=float, default=50.0, help="Requests per second in the fixed-rate phase.")
    parser.add_argument("--concurrency", type=int, default=16, help="Clients in the saturation phase.")
    parser.add_argument("--connections", type=int, default=32, help="Keep-alive connections at fixed rate.")
    parser.add_argument("--texts", type=int, default=64, help="How many different profile texts are sent.")
    parser.add_argument(
        "--wait-ms",
        type=float,
        nargs="+",
        default=[0.0, 2.0],
        help="One 'batching on' variant per value of PERSONAS_SERVE_ENCODE_BATCH_WAIT_MS.",
    )
    parser.add_argument("--workers", type=int, default=1, help="Server worker processes (`personas serve --workers`).")
    parser.add_argument(
        "--fp32-batches", type=int, nargs="*", default=[8], help="Forward-pass sizes of the fp32 comparison."
    )
    parser.add_argument("--short", action="store_true", help="Texts of up to ~20 words only (no paragraphs).")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="Also serve with this source tree first on PYTHONPATH (e.g. another checkout's src): 'baseline'.",
    )
    parser.add_argument("--skip-encoder", action="store_true", help="Leave out the in-process encoder table.")
    args = parser.parse_args()

    quiet = ("--no-access-log", "--log-level", "warning")
    extra = (*quiet, "--workers", str(args.workers)) if args.workers != 1 else quiet
    variants = {"batching off": {"PERSONAS_SERVE_ENCODE_BATCH_MAX": "1"}}
    for wait in args.wait_ms:
        variants[f"batching on, wait {wait:g} ms"] = {"PERSONAS_SERVE_ENCODE_BATCH_WAIT_MS": str(wait)}
    if args.baseline_src is not None:
        variants["baseline"] = {"PYTHONPATH": str(args.baseline_src.resolve())}
    console.print(f"Serving {args.model} as {len(variants)} server processes ({', '.join(variants)}) ...")
    with tempfile.TemporaryDirectory(prefix="personas-bench-writes-") as tmp:
        servers = {
            name: ServerProcess(
                args.model, database_url=f"sqlite:///{Path(tmp) / f'{i}.sqlite'}", extra_args=extra, env=env
            )
            for i, (name, env) in enumerate(variants.items())
        }
        started: list[ServerProcess] = []
        try:
            for server in servers.values():
                started.append(server.__enter__())
            for name, server in servers.items():
                # Start-up work (run users' lists precomputed in the background) would be counted as the first
                # phase's CPU: measure once every server is idle.
                assert server.process is not None
                console.print(f"{name}: idle after {wait_until_idle(server.process.pid):.0f} s")
            results = uvloop.run(measure(servers, args))
        finally:
            for server in started:
                server.__exit__(None, None, None)
    print_table(results, args)
    if not args.skip_encoder:
        encoder_alone(args)


if __name__ == "__main__":
    main()
