"""File helpers shared by every layer that writes artefacts: checksums, atomic file writes and atomic folder
replacement.

Atomic writes go to a temporary sibling (same folder, so same filesystem, so ``os.replace`` is an atomic
rename) whose name starts with a dot, and are renamed onto the target only when complete: a reader sees the
old file or the new one, never half of one, and a failed write leaves the old file untouched and no
temporary file behind.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "replace_dir", "sha256_file", "write_atomic"]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _new_temp(path: Path, prefix: str | None, suffix: str) -> Path:
    """Create an empty, uniquely named file next to ``path``. Unlike ``mkstemp`` (always 0o600) the file gets
    the permissions an ordinary ``open(path, "w")`` would give (0o666 less the umask): these are outputs
    that other people and processes read."""
    head = f".{path.name}." if prefix is None else prefix
    for _ in range(100):
        candidate = path.parent / f"{head}{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free temporary name next to {path}")


@contextmanager
def atomic_path(
    path: str | Path, *, prefix: str | None = None, suffix: str = ".tmp", fsync: bool = False
) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` for a library to write to (``np.save``, ``to_parquet``,
    ``onnx.save``); it is renamed onto ``path`` when the block ends normally and removed when it raises.

    The temporary name is ``prefix + random + suffix`` (prefix default ``.<name>.``), so readers that skip
    dot-files never see it. ``fsync`` flushes the data to disk before the rename (a crash then leaves the old
    file or the whole new one)."""
    path = Path(path)
    tmp = _new_temp(path, prefix, suffix)
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(
    path: str | Path,
    data: bytes | str,
    *,
    encoding: str = "utf-8",
    prefix: str | None = None,
    suffix: str = ".tmp",
    fsync: bool = False,
) -> Path:
    """Write ``data`` (``str`` is encoded with ``encoding``, no newline translation) to ``path`` atomically
    (see :func:`atomic_path`). Returns ``path``."""
    path = Path(path)
    payload = data.encode(encoding) if isinstance(data, str) else data
    with atomic_path(path, prefix=prefix, suffix=suffix, fsync=fsync) as tmp:
        tmp.write_bytes(payload)
    return path


def replace_dir(source: Path, target: Path) -> None:
    """Move a finished folder into place. ``os.replace`` cannot swap a non-empty folder, so the old one is
    moved aside first and removed only after the new one is in place."""
    if not target.exists():
        os.replace(source, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.replace(target, old / "previous")
    os.replace(source, target)
    shutil.rmtree(old, ignore_errors=True)
