"""The run folder: everything a pipeline run produced, checksummed, written atomically, never pickled.

Layout::

    manifest.json     package version, config, dataset fingerprint, encoder, seeds, timings, sha256 of every file
    users.parquet     user_id, persona, x, y (the 2-D map)
    items.parquet     item_id, title (to print recommendations without the dataset)
    vectors.npy       user vectors (float32, rows = users.parquet rows)
    encoder_head/     with ``[encode] tune = true``: the text space's projection head (weight.npy, bias.npy,
                      head.json); new users' texts go through it (RunArtefact.text_encoder)
    personas.json     one card per persona
    quality.json      group quality; choose_k scores when k was chosen automatically
    metrics.json/.md  the evaluation table with its protocol (when evaluation ran)
    models/NAME/      each recommender as arrays + JSON (personas.store)
    report.html       the self-contained report
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personas import __version__
from personas._files import replace_dir, sha256_file
from personas.describe import Persona, personas_from_json
from personas.encode import ProjectionHead, TunedEncoder, make_encoder
from personas.errors import DataError
from personas.recommend import Recommender

__all__ = ["RunArtefact", "load_run", "sha256_tree", "write_run"]

MANIFEST = "manifest.json"
FORMAT = "personas-run"
VERSION = 1


def sha256_tree(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder`` (except the manifest), keyed by its relative POSIX path."""
    return {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path != folder / MANIFEST
    }


def write_run(
    folder: str | Path,
    *,
    files: dict[str, bytes | str],
    frames: dict[str, pd.DataFrame],
    arrays: dict[str, np.ndarray],
    models: dict[str, Recommender],
    manifest: dict[str, Any],
) -> Path:
    """Write a run folder atomically: a temporary sibling first, renamed into place when complete.

    An exception or Ctrl-C before the rename leaves the previous folder (if any) untouched.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        for name, content in files.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(data)
        for name, frame in frames.items():
            frame.to_parquet(tmp / name, index=False)
        for name, array in arrays.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            np.save(tmp / name, array, allow_pickle=False)
        for name, model in models.items():
            model.save(tmp / "models" / name)
        full = {
            "format": FORMAT,
            "version": VERSION,
            "package_version": __version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **manifest,
            "models": sorted(models),
            "files": sha256_tree(tmp),
        }
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True, default=str), encoding="utf-8")
        replace_dir(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


@dataclass
class RunArtefact:
    """A verified run folder. Models are loaded on demand."""

    folder: Path
    manifest: dict[str, Any]
    users: pd.DataFrame
    items: pd.DataFrame
    personas: list[Persona]

    def model(self, name: str | None = None) -> Recommender:
        names = self.manifest.get("models", [])
        if name is None:
            if not names:
                raise DataError(f"{self.folder}: this run saved no recommender.")
            name = "hybrid" if "hybrid" in names else names[-1]
        if name not in names:
            raise DataError(f"{self.folder}: no model {name!r} in this run; saved models: {names}.")
        return Recommender.load(self.folder / "models" / name)

    def vectors(self) -> np.ndarray:
        return np.load(self.folder / "vectors.npy", allow_pickle=False)

    def text_centroids(self) -> np.ndarray | None:
        """Unit text-space centroid of each persona (None when the run used no text)."""
        path = self.folder / "text_centroids.npy"
        return np.load(path, allow_pickle=False) if path.exists() else None

    def text_encoder(self) -> Any | None:
        """The encoder that made the run's text vectors, to place new users' text in the same space.

        None when the run used no text or a TF-IDF encoder (its vocabulary is fitted per run and not saved).
        A tuned run (``[encode] tune = true``) gives the encoder followed by its saved projection head (whose
        files :func:`load_run` has checked against the manifest).
        """
        info = self.manifest.get("encoder", {})
        if not isinstance(info, dict) or info.get("text_space") is None or info.get("kind") == "tfidf":
            return None
        encoder = make_encoder(str(info["kind"]))
        expected = str(info.get("name", ""))
        if f"text={encoder.name}" not in expected:
            raise DataError(
                f"{self.folder}: the run's text encoder was {expected!r} but this installation gives "
                f"{encoder.name!r}; new users' text would land in a different space. Re-run the pipeline."
            )
        if info.get("head"):
            return TunedEncoder(encoder, ProjectionHead.load(self.folder / str(info["head"])))
        return encoder

    def persona_of_vector(self, vector: np.ndarray) -> int:
        """The persona whose text centroid is nearest (cosine) to a text vector."""
        centroids = self.text_centroids()
        if centroids is None:
            raise DataError(f"{self.folder}: this run has no text space; place new users by their items instead.")
        return int(np.argmax(centroids @ np.asarray(vector, dtype=np.float32).ravel()))


def load_run(folder: str | Path) -> RunArtefact:
    """Open a run folder, refusing it when any file is missing, added or changed since it was written."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise DataError(
            f"{folder}: no {MANIFEST}; this is not a finished personas run folder (or the run was interrupted "
            "before it completed). Run the pipeline again."
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{manifest_path}: not valid JSON ({exc}); the folder is damaged, run again.") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise DataError(
            f"{manifest_path}: format {manifest.get('format')!r} version {manifest.get('version')!r}; "
            f"expected {FORMAT!r} version {VERSION}."
        )
    expected: dict[str, str] = manifest.get("files", {})
    actual = sha256_tree(folder)
    missing = sorted(set(expected) - set(actual))
    added = sorted(set(actual) - set(expected))
    changed = sorted(name for name in set(expected) & set(actual) if expected[name] != actual[name])
    if missing or added or changed:
        problems = [
            f"{label}: {', '.join(names[:5])}{' …' if len(names) > 5 else ''}"
            for label, names in (("missing", missing), ("not in the manifest", added), ("changed", changed))
            if names
        ]
        raise DataError(
            f"{folder}: the run folder does not match its manifest ({'; '.join(problems)}). It was modified or "
            "is incomplete; run the pipeline again rather than trusting it."
        )
    return RunArtefact(
        folder=folder,
        manifest=manifest,
        users=pd.read_parquet(folder / "users.parquet"),
        items=pd.read_parquet(folder / "items.parquet"),
        personas=personas_from_json(folder / "personas.json"),
    )
