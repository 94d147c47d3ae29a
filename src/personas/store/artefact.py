"""Save and load an artefact folder: ``manifest.json`` (metadata + sha256 of every file) and one ``.npy`` per array.

The folder is written to a temporary sibling first and moved into place with ``os.replace``, so a reader
never sees a half-written artefact. Arrays are read back with ``allow_pickle=False``: object arrays are
refused at save time, and a changed or missing file is reported at load time.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from personas._files import replace_dir, sha256_file
from personas.errors import DataError

__all__ = ["FORMAT_VERSION", "MANIFEST", "load", "save"]

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def save(folder: str | Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write ``arrays`` and ``meta`` (JSON-serialisable) to ``folder``, replacing what was there."""
    folder = Path(folder)
    for name, array in arrays.items():
        if not _NAME.match(name) or name.startswith("."):
            raise DataError(f"Array name {name!r} is not a safe file name; use letters, digits, '_', '-', '.'.")
        if np.asarray(array).dtype.hasobject:
            raise DataError(f"Array {name!r} holds Python objects; convert it to a numeric or fixed-width str array.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        files: dict[str, str] = {}
        for name, array in arrays.items():
            path = tmp / f"{name}.npy"
            np.save(path, np.asarray(array), allow_pickle=False)
            files[path.name] = sha256_file(path)
        manifest = {"format": "personas-artefact", "version": FORMAT_VERSION, "meta": meta, "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        replace_dir(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load(folder: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read an artefact folder back: ``(arrays, meta)``. Every file is checked against its sha256."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise DataError(f"{folder}: no {MANIFEST} here; is this a folder written by personas.store.save?")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{manifest_path}: not valid JSON ({exc}); the artefact is damaged, save it again.") from None
    if manifest.get("format") != "personas-artefact" or manifest.get("version") != FORMAT_VERSION:
        raise DataError(
            f"{manifest_path}: format {manifest.get('format')!r} version {manifest.get('version')!r}; "
            f"this personas reads personas-artefact version {FORMAT_VERSION}."
        )
    arrays: dict[str, np.ndarray] = {}
    for file_name, digest in manifest["files"].items():
        path = folder / file_name
        if not path.is_file():
            raise DataError(f"{path}: listed in {MANIFEST} but missing; the artefact is incomplete, save it again.")
        if sha256_file(path) != digest:
            raise DataError(f"{path}: sha256 does not match {MANIFEST}; the file was changed or damaged.")
        arrays[file_name.removesuffix(".npy")] = np.load(path, allow_pickle=False)
    return arrays, manifest["meta"]
