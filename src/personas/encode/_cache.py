"""An on-disk cache of text vectors, keyed by encoder identity + sha256 of the text.

Layout: ``<directory>/<encoder slug>-<hash of name>-<dim>d/`` holds ``encoder.json`` and append-only shard
files ``shard-*.npz`` (``keys``: (n, 32) uint8 sha256 digests, ``vectors``: (n, dim) float32).

Why shards: every ``put`` writes a new file under a temporary name, fsyncs it and renames it into place
(``os.replace`` is atomic), so a writer killed mid-way leaves at most a temporary file that readers ignore,
and concurrent writers never touch the same file. Readers load only shards they have not seen yet.
``compact`` merges shards into one (same atomic rule; a shard is deleted only after its entries are in the
merged file, and readers that lose a race simply rescan). No pickle: ``np.load(allow_pickle=False)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from personas._files import atomic_path, write_atomic
from personas.config import ComponentConfig, registry
from personas.encode._base import (
    BaseEncoder,
    Encoder,
    TextInput,
    check_batch_size,
    clean_texts,
    config_of,
    text_key,
    unique_texts,
)
from personas.encode._config import CachedConfig
from personas.errors import ConfigError, DataError

__all__ = ["CachedEncoder", "EmbeddingCache"]

_SHARD_GLOB = "shard-*.npz"
_TMP_PREFIX = ".tmp-"
_AUTO_COMPACT_SHARDS = 256
_STALE_TMP_SECONDS = 3600


def _save_npz(path: Path, keys: np.ndarray, vectors: np.ndarray) -> None:
    """Write a shard through a ``.tmp-`` file that readers ignore (and ``compact`` sweeps when stale), fsync it,
    then rename it into place."""
    with atomic_path(path, prefix=_TMP_PREFIX, suffix=path.suffix, fsync=True) as tmp, tmp.open("wb") as handle:
        np.savez(handle, keys=keys, vectors=vectors)


class _Space:
    """The entries of one encoder (name + dim) as loaded so far."""

    def __init__(self, folder: Path, name: str, dim: int) -> None:
        self.folder = folder
        self.name = name
        self.dim = dim
        self.loaded: set[str] = set()
        self.index: dict[bytes, np.ndarray] = {}

    def refresh(self) -> None:
        if not self.folder.exists():
            return
        for path in sorted(self.folder.glob(_SHARD_GLOB)):
            if path.name in self.loaded:
                continue
            try:
                with np.load(path, allow_pickle=False) as data:
                    keys, vectors = data["keys"], data["vectors"]
            except FileNotFoundError:  # compacted away by another process after the listing: rescan later
                continue
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
                warnings.warn(
                    f"EmbeddingCache: skipping unreadable shard {path} ({exc}); delete it to silence "
                    "this warning (its vectors are simply recomputed).",
                    UserWarning,
                    stacklevel=4,
                )
                self.loaded.add(path.name)
                continue
            if keys.ndim != 2 or keys.shape[1] != 32 or vectors.shape != (len(keys), self.dim):
                warnings.warn(
                    f"EmbeddingCache: skipping shard {path} with shapes {keys.shape}/{vectors.shape}; "
                    f"expected (n, 32)/(n, {self.dim}). Delete it.",
                    UserWarning,
                    stacklevel=4,
                )
                self.loaded.add(path.name)
                continue
            for key, vector in zip(keys, vectors, strict=True):
                self.index[key.tobytes()] = vector
            self.loaded.add(path.name)


class EmbeddingCache:
    """Vectors on disk, keyed by encoder ``name``/``dim`` and the sha256 of each (cleaned) text.

    Safe to share between processes: writes are atomic renames of new files, so concurrent or interrupted
    writes never leave a corrupt cache. ``directory`` defaults to ``<PERSONAS_HOME>/embeddings``.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        if directory is None:
            from personas.config import get_settings

            directory = get_settings().home / "embeddings"
        self.directory = Path(directory)
        self._spaces: dict[tuple[str, int], _Space] = {}

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.directory)!r})"

    def folder(self, name: str, dim: int) -> Path:
        """The folder holding one encoder's vectors."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:48].strip("_.")
        return self.directory / f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:16]}-{dim}d"

    def _space(self, name: str, dim: int) -> _Space:
        key = (name, dim)
        if key not in self._spaces:
            self._spaces[key] = _Space(self.folder(name, dim), name, dim)
        return self._spaces[key]

    def get(self, name: str, dim: int, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors (n, dim) float32, found (n,) bool)``; rows not found are zero."""
        space = self._space(name, dim)
        space.refresh()
        vectors = np.zeros((len(keys), dim), dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        for i, key in enumerate(keys):
            vector = space.index.get(key)
            if vector is not None:
                vectors[i] = vector
                found[i] = True
        return vectors, found

    def put(self, name: str, dim: int, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store vectors under their keys (one new shard file, written atomically)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(keys), dim):
            raise DataError(
                f"EmbeddingCache.put: vectors of shape {vectors.shape} for {len(keys)} keys; expected "
                f"({len(keys)}, {dim})."
            )
        if not keys:
            return
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)
        space = self._space(name, dim)
        space.folder.mkdir(parents=True, exist_ok=True)
        meta = space.folder / "encoder.json"
        if not meta.exists():
            payload = json.dumps({"encoder": name, "dim": dim}, indent=2).encode()
            write_atomic(meta, payload, prefix=_TMP_PREFIX, suffix=meta.suffix, fsync=True)
        shard = space.folder / f"shard-{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npz"
        _save_npz(shard, key_array, vectors)
        for key, vector in zip(keys, vectors, strict=True):
            space.index[key] = vector
        space.loaded.add(shard.name)
        if sum(1 for _ in space.folder.glob(_SHARD_GLOB)) > _AUTO_COMPACT_SHARDS:
            self.compact(name, dim)

    def compact(self, name: str, dim: int) -> int:
        """Merge this encoder's shards into one file and remove stale temporary files; returns the entry count."""
        space = self._space(name, dim)
        if not space.folder.exists():
            return 0
        now = time.time()
        for tmp in space.folder.glob(f"{_TMP_PREFIX}*"):
            try:
                if now - tmp.stat().st_mtime > _STALE_TMP_SECONDS:  # a writer died long ago
                    tmp.unlink()
            except FileNotFoundError:
                pass
        before = {p.name for p in space.folder.glob(_SHARD_GLOB)}
        space.refresh()
        merged = [n for n in before if n in space.loaded]
        if len(merged) <= 1 or not space.index:
            return len(space.index)
        keys = list(space.index)
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)
        vectors = np.stack([space.index[k] for k in keys])
        target = space.folder / f"shard-{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npz"
        _save_npz(target, key_array, vectors)
        space.loaded.add(target.name)
        for shard in merged:
            (space.folder / shard).unlink(missing_ok=True)
        return len(keys)

    def size(self, name: str, dim: int) -> int:
        """How many distinct texts are cached for this encoder."""
        space = self._space(name, dim)
        space.refresh()
        return len(space.index)


class CachedEncoder(BaseEncoder):
    """An encoder whose vectors go through an :class:`EmbeddingCache`: texts seen before (by any process
    using the same cache folder) are not encoded again. Same ``name``/``dim`` as the wrapped encoder.

    ``encoder`` is an encoder object (``make_encoder(CachedConfig(...))`` builds one from a config).
    ``last_hits``/``last_misses`` count distinct texts served from the cache / encoded by the last call.
    """

    def __init__(self, encoder: Encoder, cache: EmbeddingCache | None = None) -> None:
        if isinstance(encoder, ComponentConfig):
            raise ConfigError(
                f"CachedEncoder takes an encoder object, not a {type(encoder).__name__}; build one from a config "
                "with make_encoder(CachedConfig(encoder=..., directory=...))."
            )
        self.encoder: Encoder = encoder
        self.cache = cache if cache is not None else EmbeddingCache()
        self.last_hits = 0
        self.last_misses = 0

    @property
    def config(self) -> CachedConfig:
        """The wrapped encoder's config and the cache folder."""
        return CachedConfig(encoder=config_of(self.encoder, "CachedEncoder"), directory=str(self.cache.directory))

    def __repr__(self) -> str:
        return f"CachedEncoder({self.encoder!r}, {self.cache!r})"

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def encode(
        self, texts: Sequence[TextInput], *, batch_size: int | None = None, show_progress: bool | None = None
    ) -> np.ndarray:
        check_batch_size(batch_size, 1, "CachedEncoder")
        cleaned = clean_texts(texts, where="CachedEncoder")
        name, dim = self.encoder.name, self.encoder.dim
        distinct, inverse = unique_texts(cleaned)
        keys = [text_key(t) for t in distinct]
        vectors, found = self.cache.get(name, dim, keys)
        missing = np.flatnonzero(~found)
        if len(missing):
            fresh = self.encoder.encode(
                [distinct[i] for i in missing], batch_size=batch_size, show_progress=show_progress
            )
            vectors[missing] = fresh
            self.cache.put(name, dim, [keys[i] for i in missing], fresh)
        self.last_hits = int(found.sum())
        self.last_misses = len(missing)
        return vectors[inverse]


registry.register(CachedEncoder, CachedConfig)
