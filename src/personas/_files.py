"""File helpers shared by every layer that writes artefacts: checksums and atomic folder replacement."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["replace_dir", "sha256_file"]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


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
