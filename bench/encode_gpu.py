"""Encode throughput for many short texts: the GPU path vs the CPU fast path, in one run.

    .venv/bin/python bench/encode_gpu.py                                  # 10^6 texts on the GPU rows
    .venv/bin/python bench/encode_gpu.py --texts 2000 --cpu-texts 200     # a quick check (CPU-only machines too)
    .venv/bin/python bench/encode_gpu.py --out docs/results/encode_gpu.md # also write the markdown table

Texts: short, distinct, real-word texts, "liked <title> and <title>" over seeded random pairs of the 1,682
ml-100k film titles (2.8 million distinct pairs; ~15 MiniLM tokens each).

Rows (all-MiniLM-L6-v2 everywhere, so the vectors are comparable):
  gpu sentence-transformers   SentenceTransformerEncoder(device="cuda"): float16 (and --gpu-dtypes), batches of
                              --batch-size, on all --texts;
  gpu onnxruntime             OnnxEncoder(device="cuda"): fp32 ONNX on onnxruntime's CUDAExecutionProvider;
  cpu fast path               OnnxEncoder() (fused int8, one text per pass, one worker per core) on --cpu-texts
                              of the texts (the rate extrapolates: every short text costs about the same);
  cpu sentence-transformers   SentenceTransformerEncoder() on the CPU, on --cpu-texts.
A GPU row that cannot run here (no CUDA GPU for torch, no CUDAExecutionProvider for onnxruntime) is printed with
the reason instead of numbers. Ratios are against the CPU fast path; the cosine columns compare each row's
vectors with the CPU fast path's on the texts both encoded.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def short_texts(n: int, seed: int) -> list[str]:
    """``n`` distinct "liked A and B" texts over seeded random ordered pairs of ml-100k film titles."""
    from personas.data import load_builtin

    titles = load_builtin("ml-100k", echo=lambda _: None).items["title"].fillna("").astype(str).tolist()
    m = len(titles)
    if n > m * (m - 1):
        raise SystemExit(f"--texts {n} is more than the {m * (m - 1):,} distinct title pairs.")
    rng = np.random.default_rng(seed)
    pairs = rng.choice(m * (m - 1), size=n, replace=False)
    first, second = pairs // (m - 1), pairs % (m - 1)
    second = second + (second >= first)  # skip the pair (a, a)
    return [f"liked {titles[a]} and {titles[b]}" for a, b in zip(first.tolist(), second.tolist(), strict=True)]


@dataclass
class Row:
    method: str
    device: str
    texts: int = 0
    seconds: float = 0.0
    vectors: np.ndarray | None = None
    peak_gpu_mb: float | None = None
    note: str = ""

    @property
    def rate(self) -> float:
        return self.texts / self.seconds if self.seconds else 0.0


def gpu_status() -> tuple[bool, str, bool, str]:
    """(torch sees a GPU, its name or the reason; onnxruntime has CUDA, the reason)."""
    import onnxruntime
    import torch

    torch_ok = torch.cuda.is_available()
    torch_note = torch.cuda.get_device_name(0) if torch_ok else f"no GPU: torch {torch.__version__} sees no CUDA device"
    providers = onnxruntime.get_available_providers()
    ort_ok = "CUDAExecutionProvider" in providers
    ort_note = "" if ort_ok else f"no GPU: onnxruntime {onnxruntime.__version__} has no CUDAExecutionProvider"
    return torch_ok, torch_note, ort_ok, ort_note


def measure(method: str, device: str, make: Callable[[], object], texts: list[str], batch: int | None) -> Row:
    """Load the encoder, warm it up on a few texts, then time one encode of ``texts``."""
    encoder = make()
    encoder.encode(texts[:64], batch_size=batch)  # type: ignore[attr-defined]  # load + first-call allocations
    reset_gpu_peak()
    start = time.perf_counter()
    vectors = encoder.encode(texts, batch_size=batch, show_progress=sys.stderr.isatty())  # type: ignore[attr-defined]
    seconds = time.perf_counter() - start
    row = Row(method, device, len(texts), seconds, vectors, gpu_peak_mb())
    print(f"  {method:<42} {row.rate:10.1f} texts/s ({len(texts):,} texts, {seconds:.1f} s)", file=sys.stderr)
    return row


def reset_gpu_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def gpu_peak_mb() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


def table(rows: list[Row], reference: Row | None) -> str:
    lines = [
        "| method | device | texts | seconds | texts/s | x cpu fast path | GPU peak MB | cos mean | cos min | note |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for row in rows:
        if not row.texts:
            lines.append(f"| {row.method} | {row.device} | - | - | - | - | - | - | - | {row.note} |")
            continue
        ratio = f"{row.rate / reference.rate:.1f}" if reference is not None and reference.rate else "-"
        cos_mean = cos_min = "-"
        if reference is not None and row is not reference and row.vectors is not None and reference.vectors is not None:
            n = min(len(row.vectors), len(reference.vectors))
            cosine = (row.vectors[:n] * reference.vectors[:n]).sum(axis=1)
            cos_mean, cos_min = f"{cosine.mean():.4f}", f"{cosine.min():.4f}"
        peak = f"{row.peak_gpu_mb:.0f}" if row.peak_gpu_mb is not None else "-"
        lines.append(
            f"| {row.method} | {row.device} | {row.texts:,} | {row.seconds:.1f} | {row.rate:,.0f} | {ratio} | {peak} "
            f"| {cos_mean} | {cos_min} | {row.note} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=1_000_000, help="texts for the GPU rows (default 10^6)")
    parser.add_argument("--cpu-texts", type=int, default=2_000, help="texts for the CPU rows (default 2,000)")
    parser.add_argument("--batch-size", type=int, default=512, help="texts per forward pass on the GPU")
    parser.add_argument("--gpu-dtypes", default="float16", help="comma-separated: float16,bfloat16,float32")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown report to this file")
    args = parser.parse_args(argv)

    from personas.encode import OnnxEncoder, SentenceTransformerEncoder
    from personas.encode._base import resolve_threads

    started = time.perf_counter()
    texts = short_texts(args.texts, args.seed)
    cpu_texts = texts[: min(args.cpu_texts, len(texts))]
    threads = resolve_threads(args.threads, "bench")
    torch_ok, torch_note, ort_ok, ort_note = gpu_status()
    header = (
        f"texts: {len(texts):,} short texts (GPU rows), the first {len(cpu_texts):,} of them for the CPU rows; "
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores visible, CPU rows with "
        f"{threads} thread(s); GPU: {torch_note}; load average at start: {os.getloadavg()[0]:.1f}"
    )
    print(header, file=sys.stderr)

    rows: list[Row] = []
    reference = measure(
        "cpu fast path (OnnxEncoder, int8)", "cpu", lambda: OnnxEncoder(threads=threads), cpu_texts, None
    )
    rows.append(reference)
    rows.append(
        measure(
            "cpu sentence-transformers (fp32, batch 32)",
            "cpu",
            lambda: SentenceTransformerEncoder(threads=threads),
            cpu_texts,
            None,
        )
    )
    for dtype in args.gpu_dtypes.split(","):
        method = f"gpu sentence-transformers ({dtype}, batch {args.batch_size})"
        if not torch_ok:
            rows.append(Row(method, "cuda", note=torch_note))
            continue
        rows.append(
            measure(
                method,
                "cuda",
                partial(SentenceTransformerEncoder, device="cuda", gpu_dtype=dtype),
                texts,
                args.batch_size,
            )
        )
    method = f"gpu onnxruntime (fp32 ONNX, batch {args.batch_size})"
    if ort_ok:
        rows.append(measure(method, "cuda", lambda: OnnxEncoder(device="cuda"), texts, args.batch_size))
    else:
        rows.append(Row(method, "cuda", note=ort_note))

    report = "\n".join(
        [
            header,
            "",
            table(rows, reference),
            "",
            f"total bench time {time.perf_counter() - started:.0f} s; load average at end: {os.getloadavg()[0]:.1f}",
        ]
    )
    print(report)
    if args.out is not None:
        command = "    .venv/bin/python bench/encode_gpu.py " + " ".join(argv if argv is not None else sys.argv[1:])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        from personas._files import write_atomic

        write_atomic(args.out, f"# Encode throughput: GPU vs CPU fast path\n\n{command}\n\n```\n{report}\n```\n")


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the GPU rows report a missing GPU themselves
        main()
