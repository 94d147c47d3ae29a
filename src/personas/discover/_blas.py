"""The OpenBLAS core-type hint for faiss-cpu, set on import of :mod:`personas.discover` (see its docstring).

faiss is imported lazily inside the methods that use it, so setting the variable here is early enough.
"""

from __future__ import annotations

import os

__all__ = ["has_avx512"]


def has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags
    except OSError:
        pass
    return False


if "OPENBLAS_CORETYPE" not in os.environ and has_avx512():
    os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
