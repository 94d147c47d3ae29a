"""The same seed gives the same groups with 1 and 2 BLAS/OpenMP threads on real data: ml-latest-small profiles
(TF-IDF), k = 16, and the coarse cut of their tree, each computed in a process started with that many threads.

The vectors themselves differ in their last bits between the two processes (up to about 5e-10 measured); the
labels must not."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.realdata

_CHILD = """
import hashlib, json
import numpy as np
from personas.data import build_profiles, load_builtin
from personas.discover import KMeansGroups, nest
from personas.encode import TfidfEncoder
dataset = load_builtin("ml-latest-small", echo=lambda _: None)
texts = build_profiles(dataset)
x = TfidfEncoder(128).fit(texts).encode(texts)
labels = KMeansGroups(k=16, seed=0).fit(x).labels_
coarse = nest(x, labels, 6).coarse_labels
print(json.dumps({"fine": labels.tolist(), "coarse": coarse.tolist()}))
"""


def test_ml_latest_small_profile_groups_do_not_depend_on_the_thread_count(ml_latest_small: object) -> None:
    outputs = []
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        done = subprocess.run(
            [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True, timeout=300
        )
        outputs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert len(set(outputs[0]["fine"])) == 16
    assert outputs[0] == outputs[1]
