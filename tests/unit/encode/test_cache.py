"""EmbeddingCache: hits skip the model; concurrent and killed writers (real processes) never corrupt it."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from personas.encode import CachedEncoder, EmbeddingCache, TextInput, TfidfEncoder
from personas.errors import DataError

CORPUS = ["space opera", "aliens in space", "a wedding in paris", "romantic paris", "starships and aliens"]


class CountingEncoder:
    """A real TF-IDF encoder that counts the texts it is asked to encode."""

    def __init__(self) -> None:
        self.inner = TfidfEncoder(n_components=3, min_df=1).fit(CORPUS)
        self.calls: list[list[str]] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(
        self, texts: Sequence[TextInput], *, batch_size: int | None = None, show_progress: bool | None = None
    ) -> np.ndarray:
        self.calls.append([str(t) for t in texts])
        return self.inner.encode(texts, batch_size=batch_size)


def test_second_run_does_not_call_the_model(tmp_path: Path) -> None:
    counting = CountingEncoder()
    cached = CachedEncoder(counting, EmbeddingCache(tmp_path))
    first = cached.encode([*CORPUS, CORPUS[0]])
    assert counting.calls == [CORPUS]  # the duplicate was encoded once
    assert (cached.last_hits, cached.last_misses) == (0, 5)
    np.testing.assert_array_equal(first, counting.inner.encode([*CORPUS, CORPUS[0]]))

    again = CachedEncoder(counting, EmbeddingCache(tmp_path))  # a new cache object: read from disk
    second = again.encode(list(reversed(CORPUS)))
    assert len(counting.calls) == 1
    assert (again.last_hits, again.last_misses) == (5, 0)
    np.testing.assert_array_equal(second, first[:5][::-1])

    mixed = again.encode(["space opera", "a brand new text"])
    assert counting.calls[-1] == ["a brand new text"]
    np.testing.assert_array_equal(mixed[0], first[0])


def test_encoders_with_other_names_do_not_share_entries(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    key = hashlib.sha256(b"t").digest()
    cache.put("enc-a", 2, [key], np.array([[1.0, 0.0]]))
    assert cache.get("enc-b", 2, [key])[1].tolist() == [False]
    assert cache.get("enc-a", 3, [key])[1].tolist() == [False]
    assert cache.get("enc-a", 2, [key])[1].tolist() == [True]
    with pytest.raises(DataError, match="vectors of shape"):
        cache.put("enc-a", 2, [key], np.zeros((1, 3)))


def _vector(i: int, dim: int) -> np.ndarray:
    return np.random.default_rng(i).normal(size=dim).astype(np.float32)


def _key(i: int) -> bytes:
    return hashlib.sha256(f"text {i}".encode()).digest()


WRITER = textwrap.dedent(
    """
    import hashlib, sys
    import numpy as np
    from personas.encode import EmbeddingCache
    folder, start, stop, step, dim = sys.argv[1], *map(int, sys.argv[2:6])
    cache = EmbeddingCache(folder)
    for lo in range(start, stop, step):
        ids = range(lo, min(lo + step, stop))
        keys = [hashlib.sha256(f"text {i}".encode()).digest() for i in ids]
        vectors = np.stack([np.random.default_rng(i).normal(size=dim).astype(np.float32) for i in ids])
        cache.put("writer-test", dim, keys, vectors)
        print(lo, flush=True)
    """
)


def _writer(folder: Path, start: int, stop: int, step: int, dim: int) -> subprocess.Popen[str]:
    args = [sys.executable, "-c", WRITER, str(folder), str(start), str(stop), str(step), str(dim)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


def test_concurrent_writers_in_separate_processes(tmp_path: Path) -> None:
    # Three processes write overlapping ranges at the same time, 20 shards each.
    writers = [_writer(tmp_path, start, start + 200, 10, 8) for start in (0, 0, 150)]
    for proc in writers:
        assert proc.wait(timeout=120) == 0
    cache = EmbeddingCache(tmp_path)
    keys = [_key(i) for i in range(350)]
    vectors, found = cache.get("writer-test", 8, keys)
    assert found.all()
    np.testing.assert_array_equal(vectors, np.stack([_vector(i, 8) for i in range(350)]))
    assert cache.size("writer-test", 8) == 350
    assert cache.compact("writer-test", 8) == 350
    assert len(list(cache.folder("writer-test", 8).glob("shard-*.npz"))) == 1
    fresh = EmbeddingCache(tmp_path)
    np.testing.assert_array_equal(fresh.get("writer-test", 8, keys)[0], vectors)


def test_a_writer_killed_mid_write_leaves_a_readable_cache(tmp_path: Path) -> None:
    dim = 384
    proc = _writer(tmp_path, 0, 400_000, 20_000, dim)  # 30 MB shards, so a write takes a while
    assert proc.stdout is not None
    proc.stdout.readline()  # the first shard is in place
    folder = EmbeddingCache(tmp_path).folder("writer-test", dim)
    deadline = time.monotonic() + 60
    while not list(folder.glob(".tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.001)
    os.kill(proc.pid, signal.SIGKILL)  # inside the second write
    proc.wait(timeout=30)
    assert list(folder.glob(".tmp-*")), "the kill should have interrupted a write"
    shards = list(folder.glob("shard-*.npz"))
    cache = EmbeddingCache(tmp_path)
    probe = [*range(0, 400_000, 997)]
    vectors, found = cache.get("writer-test", dim, [_key(i) for i in probe])
    assert found.sum() >= 20_000 // 997
    for row in np.flatnonzero(found)[:50]:
        np.testing.assert_array_equal(vectors[row], _vector(probe[row], dim))
    assert cache.size("writer-test", dim) == 20_000 * len(shards)  # only whole shards are ever visible
    cache.put("writer-test", dim, [_key(10**9)], _vector(10**9, dim)[None])  # and it stays writable


def test_a_damaged_shard_is_skipped_with_a_warning(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    cache.put("enc", 2, [_key(1)], np.array([[1.0, 0.0]]))
    (cache.folder("enc", 2) / "shard-0-0-broken.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(UserWarning, match="skipping unreadable shard"):
        vectors, found = EmbeddingCache(tmp_path).get("enc", 2, [_key(1), _key(2)])
    assert found.tolist() == [True, False]
    np.testing.assert_array_equal(vectors[0], [1.0, 0.0])
