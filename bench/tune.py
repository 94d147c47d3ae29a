"""What tuning the text space costs: training the projection head, and encoding users' and items' texts through
the tuned encoder against the base one.

    python bench/tune.py [--dataset ml-100k] [--repeats 3] [--no-two-threads] [--limit N]

One table per run, measured in this one process (other load on the machine moves absolute numbers, so compare
within a run): seconds (median of the repeats; one run for cold caches and tuning), peak traced Python memory
(tracemalloc, MB: numpy arrays, not torch's own allocator) and the process's peak resident memory after the step
(getrusage, MB, cumulative), then the ratios tuned / untuned. The head is trained on all of the dataset's
interactions with the users' profile texts and the items' documents, as ``[encode] tune = true`` does; with 1
torch thread (the default) and, unless ``--no-two-threads``, with 2. A markdown copy of the table is printed
last, for docs/results/tune.md.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from personas.data import build_profiles, item_documents, load_builtin
from personas.encode import CachedEncoder, EmbeddingCache, TuneConfig, TunedEncoder, make_encoder, tune_head

console = Console()


def rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(step: Callable[[], Any], repeats: int) -> tuple[float, float, float, Any]:
    """(median seconds, peak traced MB of the first run, peak RSS MB after the runs, the step's last result)."""
    seconds = []
    peak = 0.0
    result = None
    for i in range(repeats):
        if i == 0:
            tracemalloc.start()
        start = time.perf_counter()
        result = step()
        seconds.append(time.perf_counter() - start)
        if i == 0:
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    return statistics.median(seconds), peak, rss_mb(), result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-two-threads", action="store_true", help="skip tuning again with 2 torch threads")
    parser.add_argument("--limit", type=int, default=None, help="only the first N users and N items (a smoke test)")
    args = parser.parse_args()
    data = load_builtin(args.dataset, echo=lambda _: None)
    users, documents = build_profiles(data)[: args.limit], item_documents(data)[: args.limit]
    texts = [*users, *documents]
    what = f"{len(users)} user + {len(documents)} item texts"
    rows: list[tuple[str, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # One model object for both encoders, loaded before any timing, so that an empty-cache run measures
        # encoding, not the model's load (the first run would otherwise pay it alone).
        model = make_encoder("minilm")
        model.encode(texts[:8], show_progress=False)
        base = CachedEncoder(model, EmbeddingCache(Path(tmp) / "base"))
        base_cold, mb, rss, vectors = measure(lambda: base.encode(texts, show_progress=False), 1)
        rows.append((f"base encoder: {what}, empty cache", base_cold, mb, rss))
        base_warm, mb, rss, vectors = measure(lambda: base.encode(texts, show_progress=False), args.repeats)
        rows.append((f"base encoder: {what}, warm cache", base_warm, mb, rss))
        user_vectors, item_vectors = vectors[: len(users)], vectors[len(users) :]
        matrix = data.matrix("binary")[: len(users), : len(documents)]
        config = TuneConfig()
        tune_s, mb, rss, (head, evidence) = measure(
            lambda: tune_head(user_vectors, item_vectors, matrix, config, seed=0, show_progress=False), 1
        )
        rows.append((f"tune head, 1 torch thread ({evidence['epochs']} epochs)", tune_s, mb, rss))
        two_s = None
        if not args.no_two_threads:
            two = config.model_copy(update={"threads": 2})
            two_s, mb, rss, (_two_head, two_evidence) = measure(
                lambda: tune_head(user_vectors, item_vectors, matrix, two, seed=0, show_progress=False), 1
            )
            rows.append((f"tune head, 2 torch threads ({two_evidence['epochs']} epochs)", two_s, mb, rss))
        # A fresh cache for the tuned encoder: its empty-cache run pays the base model again, plus the head.
        tuned = TunedEncoder(CachedEncoder(model, EmbeddingCache(Path(tmp) / "tuned")), head)
        tuned_cold, mb, rss, _ = measure(lambda: tuned.encode(texts, show_progress=False), 1)
        rows.append((f"tuned encoder: {what}, empty cache", tuned_cold, mb, rss))
        tuned_warm, mb, rss, _ = measure(lambda: tuned.encode(texts, show_progress=False), args.repeats)
        rows.append((f"tuned encoder: {what}, warm cache", tuned_warm, mb, rss))
        apply_s, mb, rss, _ = measure(lambda: head.apply(vectors), args.repeats)
        rows.append((f"head.apply alone on {len(texts)} vectors", apply_s, mb, rss))

    title = f"Tuning the text space on {args.dataset} (median of {args.repeats} for warm runs)"
    table = Table(title=title)
    for col in ("step", "seconds", "peak MB (traced)", "peak RSS MB (process)"):
        table.add_column(col)
    for step, seconds, mb, rss in rows:
        table.add_row(step, f"{seconds:.3f}", f"{mb:.1f}", f"{rss:.0f}")
    console.print(table)
    held = evidence["held_out_loss"]
    ratios = [
        f"tuned / untuned encode, empty cache: {tuned_cold / base_cold:.3f}x",
        f"tuned / untuned encode, warm cache: {tuned_warm / base_warm:.2f}x",
        f"tuning / untuned cold encode: {tune_s / base_cold:.2f}x",
    ]
    if two_s is not None:
        ratios.append(f"tuning with 2 / 1 torch threads: {two_s / tune_s:.2f}x")
    summary = (
        f"head: {evidence['pairs']['train']:,} training pairs, {evidence['pairs']['held_out']:,} held out; best "
        f"epoch {evidence['best_epoch']} of {evidence['epochs']}; held-out loss {held[0]:.3f} -> "
        f"{held[evidence['best_epoch']]:.3f}; device {evidence['device']}"
    )
    console.print("; ".join(ratios))
    console.print(summary)
    command = "python bench/tune.py " + " ".join(sys.argv[1:])
    lines = [
        f"Command: `{command.strip()}`; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.machine()}, "
        f"Python {platform.python_version()}",
        "",
        "| step | seconds | peak MB (traced) | peak RSS MB (process) |",
        "| --- | ---: | ---: | ---: |",
        *[f"| {step} | {seconds:.3f} | {mb:.1f} | {rss:.0f} |" for step, seconds, mb, rss in rows],
        "",
        "Ratios: " + "; ".join(ratios) + ".",
        "",
        summary + ".",
    ]
    console.print("\n".join(lines), markup=False, highlight=False)
    np.asarray(vectors)  # keep the arrays alive until the end (RSS figures above include them)


if __name__ == "__main__":
    main()
