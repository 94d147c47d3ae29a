"""What the language-model space costs: encoding the items' texts, fitting TextMatch, and the router's fit and
new-user latency with and without the items' texts.

    python bench/text_space.py [--dataset ml-100k] [--repeats 3]

One table per run: seconds (median of the repeats) and peak traced Python memory (tracemalloc, MB) of each
step, with the ratio of the router with item texts to the router without. Encoding is measured twice: from an
empty embedding cache and from a warm one.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from personas.data import item_documents, load_builtin
from personas.encode import CachedEncoder, EmbeddingCache, make_encoder
from personas.recommend import ColdStartRouter, TextMatch

console = Console()


def measure(step: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """(median seconds, peak traced MB of the first run, the step's last result)."""
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
    return statistics.median(seconds), peak, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = load_builtin(args.dataset)
    documents = item_documents(data)
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(Path(tmp))
        encoder = CachedEncoder(make_encoder("minilm"), cache)
        cold_s, cold_mb, vectors = measure(lambda: encoder.encode(documents, show_progress=False), 1)
        rows.append((f"encode {len(documents)} item texts, empty cache", cold_s, cold_mb))
        warm_s, warm_mb, vectors = measure(lambda: encoder.encode(documents, show_progress=False), args.repeats)
        rows.append((f"encode {len(documents)} item texts, warm cache", warm_s, warm_mb))
    vectors = np.asarray(vectors, dtype=np.float64)
    fit_s, fit_mb, text = measure(lambda: TextMatch().fit(data, item_text_vectors=vectors), args.repeats)
    rows.append(("TextMatch fit (the prior chosen on held users)", fit_s, fit_mb))
    plain_s, plain_mb, plain = measure(lambda: ColdStartRouter().fit(data), args.repeats)
    rows.append(("router fit, no item texts", plain_s, plain_mb))
    with_s, with_mb, router = measure(lambda: ColdStartRouter().fit(data, item_text_vectors=vectors), args.repeats)
    # No user vectors or persona centroids here (the pipeline gives both): held users cannot be placed by their
    # words, so the text weight is tuned against popularity alone.
    rows.append(("router fit, with item texts (text weights tuned)", with_s, with_mb))
    query = np.asarray(make_encoder("minilm").encode(["space adventures with aliens"], show_progress=False))[0]
    for name, model in (("no item texts", plain), ("with item texts", router)):
        s, mb, _ = measure(lambda m=model: m.recommend_new(text="space adventures with aliens", vector=query, n=10), 50)
        rows.append((f"router recommend_new (typed text), {name}", s, mb))
    table = Table(title=f"The language-model space on {args.dataset} (median of {args.repeats}; new users: of 50)")
    for col in ("step", "seconds", "peak MB (traced)"):
        table.add_column(col)
    for step, seconds, mb in rows:
        table.add_row(step, f"{seconds:.4f}", f"{mb:.1f}")
    console.print(table)
    console.print(
        f"router fit with / without item texts: {with_s / plain_s:.2f}x time, {with_mb / max(plain_mb, 1e-9):.2f}x "
        f"peak memory; text weight {router.text_weight_:g}, TextMatch prior {text.prior_:g}; "
        f"warm / empty cache encode: {warm_s / cold_s:.3f}x"
    )


if __name__ == "__main__":
    main()
