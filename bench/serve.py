"""Latency and throughput of the HTTP service on loopback, with 1 and 2 worker processes (`--workers`).

    .venv/bin/python bench/serve.py --model runs/demo            # after `personas demo`

For GET /users/{id}/recommendations and GET /items/{id} (the floor: routing, auth, validation and JSON without
model work or database), and POST /users with --post, it measures, for each worker count in --workers:
- fixed rate (open loop): requests sent on a fixed schedule at --rate per second for --seconds, latency
  p50/p95/p99 from the moment each request was due (so a server falling behind shows up in the tail);
- saturation (closed loop): --concurrency clients sending back to back, giving the most requests per second;
- server CPU per request (user + system of the server's processes, workers included, from /proc) and so the
  requests per second one core serves; the ratio recommendations / floor of those is the target (>= 0.70).
With --in-process, the same work as library calls without HTTP, to show what HTTP and the framework add.

Measuring starts once the server is idle (run users' recommendations are precomputed in the background when it
starts). The load generator runs on the same machine as the server, so both share its cores; compare within
one run. Requests carry an admin API key; the rate limits are raised out of reach (their counting still runs).

    .venv/bin/python bench/serve.py --model runs/demo --compare-auth   # what access control costs

--compare-auth serves the run twice at once, auth off (no keys, no limits) and auth on (a read-write key with
the run-users grant, per-key and per-address limits counted), and sends both the same GET recommendations and
POST /users at a fixed rate, alternating between the two servers for --rounds rounds; it prints p50/p95/p99
of each and the ratio on/off (target: auth adds at most 10% to p99).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import uvloop
from rich.console import Console
from rich.table import Table

from personas.api import PersonaService, ServeSettings
from personas.api.testing import NO_RATE_LIMITS, ServerProcess, key_headers

console = Console()

TEXTS = [
    "I love science fiction and space operas, the older the better",
    "romantic comedies and period dramas with a good soundtrack",
    "a retired engineer who watches westerns and war films",
    "horror films at night, thrillers and anything by Hitchcock",
    "animated family films I can watch with my kids",
    "documentaries, film noir and classic black and white cinema",
    "a student who likes action films, heists and crime stories",
    "musicals, dance films and the occasional comedy",
]


class Connection:
    """A minimal HTTP/1.1 keep-alive client on one connection: the load generator shares the machine with the
    server, so it must cost little CPU (a general-purpose client costs more than the server's answer)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int, headers: str = ""
    ) -> None:
        self.reader, self.writer, self.host, self.port = reader, writer, host, port
        self.headers = headers

    @classmethod
    async def open(cls, host: str, port: int, headers: dict[str, str] | None = None) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, host, port, "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()))

    async def request(self, method: str, path: str, body: bytes = b"") -> int:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        message = head.encode() + b"\r\n" + body
        line = b""
        for attempt in range(2):
            try:
                self.writer.write(message)
                line = await self.reader.readline()
            except ConnectionError:
                if attempt:
                    raise
            if line:
                break
            # The server closed an idle keep-alive connection (uvicorn: after 5 s): reconnect once.
            self.writer.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        status = int(line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


Request = Callable[[Connection, int], Awaitable[int]]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its living descendants (the worker processes of `personas serve --workers`)."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            total += cpu_seconds(current)
            pending += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except (OSError, ValueError):
            continue  # ended meanwhile
    return total


def wait_until_idle(pid: int, *, seconds: float = 900.0, window: float = 1.0, quiet: int = 3) -> float:
    """Wait until the server's processes used under 2% of a core in each of ``quiet`` windows in a row
    (start-up work, such as precomputing run users' recommendations, has ended); returns the seconds waited.
    Several windows: on a busy machine a working process may get little CPU in one."""
    start = time.monotonic()
    calm = 0
    while time.monotonic() - start < seconds and calm < quiet:
        before = tree_cpu_seconds(pid)
        time.sleep(window)
        calm = calm + 1 if tree_cpu_seconds(pid) - before < 0.02 * window else 0
    return time.monotonic() - start


@dataclass
class Result:
    scenario: str
    mode: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    server_cpu_s: float = float("nan")
    workers: str = ""

    @property
    def cpu_ms(self) -> float:
        """Server CPU per request: what the machine's load cannot inflate (unlike wall-clock latency)."""
        return 1000 * self.server_cpu_s / self.requests if self.requests else float("nan")

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else float("nan")

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


async def fixed_rate(pool: asyncio.Queue[Connection], request: Request, rate: float, seconds: float) -> Result:
    """Requests due on a fixed schedule; latency counts from when each was due (waiting for a free connection
    included), so a server that falls behind shows it in the tail instead of slowing the schedule."""
    # time.perf_counter, not the loop's time: uvloop's is libuv's millisecond clock, cached per loop
    # iteration, which rounded every latency to whole milliseconds (a 4.2 ms answer read as 5).
    clock = time.perf_counter
    count = int(rate * seconds)
    start = clock() + 0.05
    latencies: list[float] = []
    errors = 0

    async def one(i: int) -> None:
        nonlocal errors
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - clock()))
        connection = await pool.get()
        try:
            errors += await request(connection, i) >= 400
        finally:
            pool.put_nowait(connection)
        latencies.append(1000 * (clock() - due))

    await asyncio.gather(*(one(i) for i in range(count)))
    return Result("", f"fixed {rate:g}/s", count, errors, clock() - start, latencies)


async def saturate(pool: asyncio.Queue[Connection], request: Request, concurrency: int, seconds: float) -> Result:
    """``concurrency`` clients sending back to back for ``seconds``."""
    clock = time.perf_counter  # as in fixed_rate
    end = clock() + seconds
    latencies: list[float] = []
    errors = 0
    counter = 0

    async def worker() -> None:
        nonlocal errors, counter
        connection = await pool.get()
        try:
            while clock() < end:
                counter += 1
                sent = clock()
                errors += await request(connection, counter) >= 400
                latencies.append(1000 * (clock() - sent))
        finally:
            pool.put_nowait(connection)

    start = clock()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result("", f"saturate x{concurrency}", len(latencies), errors, clock() - start, latencies)


def in_process(service: PersonaService, users: list[str], seconds: float) -> tuple[Result, Result]:
    """The same work as the two endpoints, as library calls (no HTTP; the recommendations' JSON included)."""
    out = []
    for name, call in (
        ("GET /users/{id}/recommendations", lambda i: service.recommendations_json(users[i % len(users)], 10)),
        ("POST /users", lambda i: service.create_user(TEXTS[i % len(TEXTS)], [], 10)),
    ):
        for i in range(5):  # warm up (the text encoder loads on first use)
            call(i)
        latencies = []
        start = time.perf_counter()
        cpu = time.process_time()
        i = 0
        while time.perf_counter() - start < seconds / 2:
            t0 = time.perf_counter()
            call(i)
            latencies.append(1000 * (time.perf_counter() - t0))
            i += 1
        result = Result(name, "in process", i, 0, time.perf_counter() - start, latencies)
        result.server_cpu_s = time.process_time() - cpu
        out.append(result)
    return out[0], out[1]


async def run_http(server: ServerProcess, users: list[str], floor_item: str, args: argparse.Namespace) -> list[Result]:
    assert server.process is not None
    host, port, pid = server.host, server.port, server.process.pid
    workers = f"{args.current_workers} worker{'s' if args.current_workers > 1 else ''}"

    def recommendations(connection: Connection, i: int) -> Awaitable[int]:
        return connection.request("GET", f"/users/{users[i % len(users)]}/recommendations?n=10")

    bodies = [json.dumps({"text": text, "n": 10}).encode() for text in TEXTS]

    def new_user(connection: Connection, i: int) -> Awaitable[int]:
        return connection.request("POST", "/users", bodies[i % len(bodies)])

    def item(connection: Connection, i: int) -> Awaitable[int]:
        return connection.request("GET", f"/items/{floor_item}")

    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(max(args.concurrency, args.connections)):
        pool.put_nowait(await Connection.open(host, port, server.headers))
    results = []
    scenarios: list[tuple[str, Request, float]] = [
        ("GET /items/{id} (floor)", item, args.rate),
        ("GET /users/{id}/recommendations", recommendations, args.rate),
    ]
    if args.post:
        scenarios.append(("POST /users", new_user, args.post_rate))
    connections = [pool.get_nowait() for _ in range(pool.qsize())]
    for connection in connections:
        pool.put_nowait(connection)

    async def warm_up(request: Request, rounds: int) -> None:
        # Every connection, not one: each may reach another worker, and a worker's first requests pay for lazy
        # parts (the text encoder, FastAPI's routes built on first match, the key's one argon2 check).
        for i in range(rounds):
            await asyncio.gather(*(request(connection, i) for connection in connections))

    for name, request, rate in scenarios:
        await warm_up(request, 2)
        for phase in (
            functools.partial(fixed_rate, pool, request, rate, args.seconds),
            functools.partial(saturate, pool, request, args.concurrency, args.seconds),
        ):
            cpu = tree_cpu_seconds(pid)
            result = await phase()
            result.server_cpu_s = tree_cpu_seconds(pid) - cpu
            result.scenario = name
            result.workers = workers
            results.append(result)
    while not pool.empty():
        pool.get_nowait().close()
    return results


#: Limits counted but never reached (the bench measures speed, not refusals): the shape of the defaults.
UNREACHED_LIMITS = {
    "PERSONAS_SERVE_RATE_LIMIT_PER_KEY": "1000000/second;60000000/minute",
    "PERSONAS_SERVE_RATE_LIMIT_PER_ADDRESS": "1000000/second;60000000/minute",
}
AUTH_OFF = {"PERSONAS_SERVE_AUTH": "false", **NO_RATE_LIMITS}


async def compare_auth(
    off: ServerProcess, on: ServerProcess, users: list[str], args: argparse.Namespace
) -> dict[tuple[str, str], Result]:
    """The same requests to both servers, alternating in rounds; latencies pooled per (endpoint, variant)."""
    bodies = [json.dumps({"text": text, "n": 10}).encode() for text in TEXTS]
    scenarios: list[tuple[str, Request, float]] = [
        (
            "GET /users/{id}/recommendations",
            lambda c, i: c.request("GET", f"/users/{users[i % len(users)]}/recommendations?n=10"),
            args.rate,
        ),
        ("POST /users", lambda c, i: c.request("POST", "/users", bodies[i % len(bodies)]), args.post_rate),
    ]
    pools: dict[str, asyncio.Queue[Connection]] = {}
    for variant, server in (("auth off", off), ("auth on", on)):
        pools[variant] = asyncio.Queue()
        for _ in range(args.connections):
            pools[variant].put_nowait(await Connection.open(server.host, server.port, server.headers))
    pids = {"auth off": off.process.pid, "auth on": on.process.pid}  # type: ignore[union-attr]
    out: dict[tuple[str, str], Result] = {}
    for name, request, rate in scenarios:
        for variant, pool in pools.items():
            connection = await pool.get()
            for i in range(20):  # warm up: lazy model parts, the text encoder, the key's first check
                assert await request(connection, i) < 400, f"{variant}: {name} refused"
            pool.put_nowait(connection)
        for round_ in range(args.rounds):
            order = list(pools) if round_ % 2 == 0 else list(reversed(pools))  # neither always goes first
            for variant in order:
                cpu = cpu_seconds(pids[variant])
                result = await fixed_rate(pools[variant], request, rate, args.seconds)
                result.server_cpu_s = cpu_seconds(pids[variant]) - cpu
                pooled = out.setdefault((name, variant), Result(name, variant, 0, 0, 0.0, [], 0.0))
                pooled.requests += result.requests
                pooled.errors += result.errors
                pooled.seconds += result.seconds
                pooled.latencies_ms += result.latencies_ms
                pooled.server_cpu_s += result.server_cpu_s
    for pool in pools.values():
        while not pool.empty():
            pool.get_nowait().close()
    return out


def print_auth_comparison(results: dict[tuple[str, str], Result], args: argparse.Namespace) -> None:
    table = Table(
        title=(
            f"Access control on vs off: the same requests at a fixed rate ({args.rate:g} req/s, {args.post_rate:g} for "
            f"POST /users), {args.rounds} alternating rounds of {args.seconds:g} s per variant"
        ),
        title_justify="left",
    )
    for column in (
        "endpoint",
        "variant",
        "requests",
        "errors",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "p99 on/off",
        "CPU ms/req",
    ):
        table.add_column(column, justify="left" if column in ("endpoint", "variant") else "right")
    verdicts = []
    for (name, variant), result in results.items():
        base = results[(name, "auth off")]
        ratio = result.percentile(99) / base.percentile(99)
        if variant == "auth on":
            verdicts.append(f"{name}: p99 x{ratio:.2f} ({'meets' if ratio <= 1.10 else 'misses'} the 1.10 target)")
        table.add_row(
            name,
            variant,
            f"{result.requests:,}",
            str(result.errors),
            f"{result.percentile(50):.1f}",
            f"{result.percentile(95):.1f}",
            f"{result.percentile(99):.1f}",
            f"{ratio:.2f}" if variant == "auth on" else "",
            f"{result.cpu_ms:.2f}",
        )
    console.print(table)
    for verdict in verdicts:
        console.print(verdict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("runs/demo"), help="Run folder to serve.")
    parser.add_argument("--db", default=None, help="Database URL (default: a new SQLite file in a temp folder).")
    parser.add_argument("--workers", default="1,2", help="Worker counts to measure, comma-separated.")
    parser.add_argument("--rate", type=float, default=200.0, help="Requests per second in the fixed-rate phase.")
    parser.add_argument("--post", action="store_true", help="Measure POST /users too (bench/serve_writes.py has more).")
    parser.add_argument("--post-rate", type=float, default=50.0, help="Fixed rate for POST /users (text encoding).")
    parser.add_argument("--seconds", type=float, default=10.0, help="Length of each phase.")
    parser.add_argument("--connections", type=int, default=32, help="Keep-alive connections at fixed rate.")
    parser.add_argument("--concurrency", type=int, default=16, help="Clients in the saturation phase.")
    parser.add_argument("--in-process", action="store_true", help="Also time the work as library calls.")
    parser.add_argument("--compare-auth", action="store_true", help="Only auth on vs auth off (see above).")
    parser.add_argument("--rounds", type=int, default=4, help="Alternating rounds per variant (--compare-auth).")
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]

    with tempfile.TemporaryDirectory(prefix="personas-bench-") as tmp:
        service = PersonaService(ServeSettings(model_dir=args.model, database_url=f"sqlite:///{Path(tmp) / 'lib.db'}"))
        rng = np.random.default_rng(0)
        users = [str(u) for u in rng.choice(service.user_ids, size=min(500, len(service.user_ids)), replace=False)]
        console.print(f"Serving {args.model} ({len(service.user_ids)} users, model {service.model_name}) ...")
        floor_item = service.item_ids[int(service.popular_order[0])]
        if args.compare_auth:
            on_url = f"sqlite:///{Path(tmp) / 'auth-on.sqlite'}"
            off_url = f"sqlite:///{Path(tmp) / 'auth-off.sqlite'}"
            with (
                ServerProcess(args.model, database_url=off_url, env=AUTH_OFF, key_scopes=None) as off,
                ServerProcess(
                    args.model, database_url=on_url, env=UNREACHED_LIMITS, key_scopes=None, rate_limits=True
                ) as on,
            ):
                # A client's key, not an admin one: the scope, run-users grant and ownership checks all run.
                on.headers = key_headers(on_url, "read,write", run_users=True)
                compared = uvloop.run(compare_auth(off, on, users, args))
            print_auth_comparison(compared, args)
            return
        results: list[Result] = []
        for workers in worker_counts:
            url = args.db or f"sqlite:///{Path(tmp) / f'bench-{workers}.sqlite'}"
            extra = ("--no-access-log", "--log-level", "warning", "--workers", str(workers))
            with ServerProcess(
                args.model,
                database_url=url,
                env=UNREACHED_LIMITS,
                rate_limits=True,
                extra_args=extra,
                startup_timeout=900,
            ) as server:
                assert server.process is not None
                waited = wait_until_idle(server.process.pid)
                console.print(f"{workers} worker(s): idle after {waited:.0f} s (start-up work done); load {load()}")
                args.current_workers = workers
                results += uvloop.run(run_http(server, users, floor_item, args))
        results += noop_reference(args)
        library: list[Result] = []
        if args.in_process:
            assert service.top is not None
            service.top.fill_all()
            library = list(in_process(service, users, args.seconds))

    table = Table(
        title=(
            f"personas serve on loopback: {args.seconds:g} s per phase, fixed rate {args.rate:g} req/s"
            f"{f' ({args.post_rate:g} for POST /users)' if args.post else ''}, {args.concurrency} clients at "
            f"saturation; load {load()} at the end"
        ),
        title_justify="left",
    )
    columns = ("workers", "endpoint", "load", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms")
    for column in (*columns, "server CPU ms/req", "req/s per CPU core", "per core / floor"):
        table.add_column(column, justify="left" if column in ("workers", "endpoint", "load") else "right")
    floors = {(r.workers, r.mode): r for r in results if r.scenario.endswith("(floor)")}
    for result in [*results, *library]:
        base = floors.get((result.workers, result.mode))
        own = base and result is not base and result.cpu_ms > 0 and not result.scenario.startswith("no-op")
        ratio = f"{base.cpu_ms / result.cpu_ms:.2f}" if own and base else ""
        table.add_row(
            result.workers,
            result.scenario,
            result.mode,
            f"{result.requests:,}",
            str(result.errors),
            f"{result.throughput:,.0f}",
            f"{result.percentile(50):.1f}",
            f"{result.percentile(95):.1f}",
            f"{result.percentile(99):.1f}",
            f"{result.cpu_ms:.2f}",
            f"{1000 / result.cpu_ms:,.0f}" if result.cpu_ms > 0 else "",
            ratio,
        )
    console.print(table)
    reference = {r.mode: r for r in results if r.scenario.startswith("no-op")}
    for workers in dict.fromkeys(r.workers for r in results if not r.scenario.startswith("no-op")):
        recs = {r.mode: r for r in results if r.workers == workers and r.scenario.startswith("GET /users")}
        floor = {r.mode: r for r in results if r.workers == workers and r.scenario.endswith("(floor)")}
        fixed = next(m for m in recs if m.startswith("fixed"))
        saturated = next(m for m in recs if m.startswith("saturate"))
        per_core = floor[saturated].cpu_ms / recs[saturated].cpu_ms
        p99 = recs[fixed].percentile(99)
        console.print(
            f"{workers}: GET recommendations per core = {per_core:.2f} x the floor's at saturation "
            f"({'meets' if per_core >= 0.70 else 'misses'} 0.70); p99 at {args.rate:g} req/s {p99:.1f} ms "
            f"({'meets' if p99 <= 5 else 'misses'} 5 ms); saturated {recs[saturated].throughput:,.0f} req/s "
            f"(floor {floor[saturated].throughput:,.0f})."
        )
    if fixed_noop := next((r for m, r in reference.items() if m.startswith("fixed")), None):
        console.print(
            f"The machine's own p99 at {args.rate:g} req/s (a no-op ASGI app, same client): "
            f"{fixed_noop.percentile(99):.1f} ms."
        )


def noop_reference(args: argparse.Namespace) -> list[Result]:
    """The same client against a uvicorn serving an app that does nothing (bench/_noop_asgi.py, one worker,
    uvloop + httptools as `personas serve`): the latency this machine and load generator show by themselves.
    A p99 target cannot be read below this one's p99."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "uvicorn", "_noop_asgi:app", "--port", str(port), "--no-access-log"]
    command += ["--log-level", "warning", "--loop", "uvloop", "--http", "httptools"]
    process = subprocess.Popen(command, cwd=Path(__file__).parent)
    try:

        async def measure() -> list[Result]:
            for _ in range(200):  # up in well under a second
                try:
                    first = await Connection.open("127.0.0.1", port, {})
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            else:
                raise RuntimeError("the no-op ASGI reference server did not start")
            pool: asyncio.Queue[Connection] = asyncio.Queue()
            pool.put_nowait(first)
            for _ in range(max(args.concurrency, args.connections) - 1):
                pool.put_nowait(await Connection.open("127.0.0.1", port, {}))

            def noop(connection: Connection, i: int) -> Awaitable[int]:
                return connection.request("GET", "/")

            out = []
            for phase in (
                functools.partial(fixed_rate, pool, noop, args.rate, args.seconds),
                functools.partial(saturate, pool, noop, args.concurrency, args.seconds),
            ):
                cpu = tree_cpu_seconds(process.pid)
                result = await phase()
                result.server_cpu_s = tree_cpu_seconds(process.pid) - cpu
                result.scenario, result.workers = "no-op ASGI app (machine reference)", "1 worker"
                out.append(result)
            while not pool.empty():
                pool.get_nowait().close()
            return out

        return uvloop.run(measure())
    finally:
        process.terminate()
        process.wait(timeout=10)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
