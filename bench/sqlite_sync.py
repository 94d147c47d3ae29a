"""What ``PRAGMA synchronous=FULL`` costs the service's writes against NORMAL: one event per transaction (the
write of POST /users/{id}/events), on a SQLite file in the temporary folder, the two levels alternated.

    .venv/bin/python bench/sqlite_sync.py --writes 300 --rounds 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

from personas.api import Storage

LEVELS = {"NORMAL": "1", "FULL": "2"}


def write_times(level: str, writes: int) -> list[float]:
    """Milliseconds of each write at that level (the service's own pragmas, then this level over them)."""
    folder = Path(tempfile.mkdtemp(prefix="sqlite-sync-"))
    store = Storage(f"sqlite:///{folder / 'db.sqlite'}")

    def set_level(connection: Any, _record: Any) -> None:
        connection.execute(f"PRAGMA synchronous={level}")

    event.listen(store.engine, "connect", set_level)
    store.create_schema()
    assert store.synchronous() == LEVELS[level]
    times = []
    for i in range(writes):
        start = time.perf_counter()
        store.add_events(f"user-{i % 10}", [f"item-{i}"])
        times.append((time.perf_counter() - start) * 1000)
    store.close()
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for _ in range(args.rounds):
        for level in LEVELS:
            t = write_times(level, args.writes)
            p90, p99 = t[int(0.9 * len(t))], t[int(0.99 * len(t))]
            print(f"{level:6s} {len(t)} writes: median {statistics.median(t):.2f} ms, p90 {p90:.2f}, p99 {p99:.2f}")


if __name__ == "__main__":
    main()
