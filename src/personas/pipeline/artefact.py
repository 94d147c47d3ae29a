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
    metrics_per_user.parquet  per-user metric values (to resume a run and compare models without re-running)
    models/NAME/      each recommender as arrays + JSON (personas.store)
    report.html       the self-contained report

A run keeps each stage's result as it finishes (:class:`RunWriter`): if a later stage fails, the finished ones
are written as a run folder whose manifest says ``"status": "incomplete"``, with the error, the stages done and
the command that resumes the run; ``personas run CONFIG --resume`` reuses them (checksummed like the rest).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personas import __version__
from personas._files import replace_dir, sha256_file
from personas.describe import Persona, personas_from_json
from personas.discover import place_in_tree
from personas.encode import ProjectionHead, TunedEncoder, make_encoder
from personas.errors import DataError
from personas.recommend import Recommender, history_row

__all__ = ["Placement", "RunArtefact", "RunWriter", "load_run", "read_manifest", "sha256_tree", "write_run"]

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


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)  # same filesystem: instant, and the file is never modified in place
    except OSError:
        shutil.copy2(source, target)


class RunWriter:
    """Builds a run folder stage by stage in a hidden temporary sibling of ``folder``.

    :meth:`finish` renames it into place complete. :meth:`keep_incomplete` (a stage failed) renames it into
    place marked incomplete, with the error and the resume command; when ``folder`` holds a complete run it
    is left untouched and the incomplete one goes to ``<folder>.incomplete`` beside it (resuming reads that
    first). Either way every file is checksummed in the manifest, and nothing half-written is ever visible.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.folder.name}.", suffix=".partial", dir=self.folder.parent))
        self.stages: dict[str, dict[str, Any]] = {}

    @property
    def incomplete_folder(self) -> Path:
        return self.folder.with_name(f"{self.folder.name}.incomplete")

    def write(
        self,
        *,
        files: dict[str, bytes | str] | None = None,
        frames: dict[str, pd.DataFrame] | None = None,
        arrays: dict[str, np.ndarray] | None = None,
        models: dict[str, Recommender] | None = None,
    ) -> list[str]:
        """Write files into the run; returns their relative paths (models: every file of their folders)."""
        written: list[str] = []
        for name, content in (files or {}).items():
            (self.tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (self.tmp / name).write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
            written.append(name)
        for name, frame in (frames or {}).items():
            frame.to_parquet(self.tmp / name, index=False)
            written.append(name)
        for name, array in (arrays or {}).items():
            (self.tmp / name).parent.mkdir(parents=True, exist_ok=True)
            np.save(self.tmp / name, array, allow_pickle=False)
            written.append(name)
        for name, model in (models or {}).items():
            model.save(self.tmp / "models" / name)
            written += sorted(
                p.relative_to(self.tmp).as_posix() for p in (self.tmp / "models" / name).rglob("*") if p.is_file()
            )
        return written

    def reuse(self, source: Path, names: Iterable[str]) -> list[str]:
        """Take files of a verified earlier run folder as they are (hard links where possible)."""
        names = list(names)
        for name in names:
            _link_or_copy(source / name, self.tmp / name)
        return names

    def stage_done(self, name: str, key: str, files: list[str], **info: Any) -> None:
        """Record a finished stage: the key of the inputs it was computed from, its files and facts."""
        self.stages[name] = {"key": key, "files": sorted(files), **info}

    def _manifest(self, manifest: dict[str, Any], models: Iterable[str]) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "package_version": __version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **manifest,
            "models": sorted(models),
            "stages": self.stages,
            "files": sha256_tree(self.tmp),
        }

    def _write_manifest(self, full: dict[str, Any]) -> None:
        (self.tmp / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True, default=str), encoding="utf-8")

    def finish(self, manifest: dict[str, Any], models: Iterable[str]) -> Path:
        """Mark the run complete and move it into place (an incomplete sibling left by a failed try goes)."""
        self._write_manifest({**self._manifest(manifest, models), "status": "complete"})
        replace_dir(self.tmp, self.folder)
        if self.incomplete_folder.is_dir():
            shutil.rmtree(self.incomplete_folder, ignore_errors=True)
        return self.folder

    def keep_incomplete(
        self, manifest: dict[str, Any], models: Iterable[str], *, failed: str, error: str, resume: str
    ) -> Path:
        """Move the finished stages into place as an incomplete run; returns where it went."""
        kept = {name for entry in self.stages.values() for name in entry["files"]}
        for path in sorted(self.tmp.rglob("*"), reverse=True):  # files of the failed stage go, deepest first
            relative = path.relative_to(self.tmp).as_posix()
            if path.is_file() and relative not in kept:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        full = self._manifest(manifest, models)
        full.update(status="incomplete", failed_stage=failed, error=error, resume=resume)
        self._write_manifest(full)
        target = self.folder
        if (self.folder / MANIFEST).is_file() and _status(self.folder) == "complete":
            target = self.incomplete_folder  # never replace a finished run by an unfinished one
        replace_dir(self.tmp, target)
        return target

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _status(folder: Path) -> str | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(manifest.get("status", "complete")) if isinstance(manifest, dict) else None


#: Top-down runs (``[discover] tree = "top-down"``): the coarse personas' unit text-space centroids.
COARSE_TEXT_CENTROIDS = "coarse_text_centroids.npy"


@dataclass(frozen=True)
class Placement:
    """A user's persona at both levels: ``fine`` (the one recommendations use) and ``coarse`` (its parent, in a
    two-level run); None where there is none."""

    fine: int | None
    coarse: int | None


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
                unfinished = (
                    f" It is incomplete (stage {self.manifest.get('failed_stage')!r} failed); resume it with: "
                    f"{self.manifest.get('resume')}"
                    if self.manifest.get("status") == "incomplete"
                    else ""
                )
                raise DataError(f"{self.folder}: this run saved no recommender.{unfinished}")
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

    @property
    def coarse_personas(self) -> list[Persona]:
        """The coarse persona cards of a two-level run (``[discover] hierarchy = true``); empty otherwise."""
        path = self.folder / "coarse_personas.json"
        return personas_from_json(path) if path.is_file() else []

    @property
    def tree_kind(self) -> str | None:
        """How a two-level run built its tree ("bottom-up" or "top-down"); None in a one-level run."""
        tree = self.manifest.get("hierarchy")
        return str(tree.get("tree", "bottom-up")) if isinstance(tree, dict) else None

    @cached_property
    def _top_down_centroids(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(coarse text centroids, fine text centroids, parent of each fine persona) of a top-down run."""
        path = self.folder / COARSE_TEXT_CENTROIDS
        fine = self.text_centroids()
        if self.tree_kind != "top-down" or fine is None or not path.is_file():
            return None
        parent = np.array([self.coarse_of(g) for g in range(len(fine))], dtype=np.int64)
        return np.load(path, allow_pickle=False), fine, parent

    def place_text_vector(self, vector: np.ndarray) -> tuple[int, int] | None:
        """(coarse, fine) persona of a new user's text vector in a top-down run (``[discover] tree =
        "top-down"``): the nearest coarse persona in the text space, where the coarse personas were found, then
        the nearest of its fine personas. None in other runs or for a vector of another size."""
        saved = self._top_down_centroids
        row = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if saved is None or row.shape[1] != saved[0].shape[1]:
            return None
        coarse, fine = place_in_tree(row, row, *saved)
        return int(coarse[0]), int(fine[0])

    def coarse_of(self, persona: int) -> int | None:
        """The coarse persona of a (fine) persona in a two-level run; None in a one-level run or for no persona."""
        parents = {p.group: p.parent for p in self.personas}
        return parents.get(persona) if persona >= 0 else None

    def place(
        self,
        model: Recommender,
        *,
        text: str | None = None,
        vector: np.ndarray | None = None,
        history: Iterable[str] = (),
    ) -> Placement:
        """Both personas of a new user, by the rule the service and the CLI use (:class:`GroupPlacer`): their text
        vector's nearest persona, else their items' group, else the known users whose words are most like theirs;
        the coarse persona is the fine one's parent. ``history``: item ids (unknown ones are ignored)."""
        placer = model.group_placer()
        rows = np.array([model.item_vocab_.row(i) for i in history if i in model.item_vocab_], dtype=np.int64)
        if placer is None or (not len(rows) and not text and vector is None):
            return Placement(fine=None, coarse=None)
        placer = placer.with_side(centroids=self.text_centroids())
        vec = None if vector is None else np.asarray(vector, dtype=np.float32).ravel()
        if vec is not None and (tree := self.place_text_vector(vec)) is not None:  # a top-down run
            return Placement(fine=tree[1], coarse=tree[0])
        fine = placer.place(text=text, vector=vec, history=history_row(np.unique(rows), model.n_items_))
        if fine < 0:
            return Placement(fine=None, coarse=None)
        return Placement(fine=fine, coarse=self.coarse_of(fine))

    def place_vector(self, vector: np.ndarray) -> tuple[int | None, int]:
        """(coarse, fine) persona of a new user's text vector: the nearest fine persona's text centroid, and its
        coarse persona (None in a one-level run); in a top-down run, the nearest coarse persona first
        (:meth:`place_text_vector`)."""
        if (tree := self.place_text_vector(vector)) is not None:
            return tree
        fine = self.persona_of_vector(vector)
        return self.coarse_of(fine), fine

    def persona_of_vector(self, vector: np.ndarray) -> int:
        """The persona whose text centroid is nearest (cosine) to a text vector."""
        centroids = self.text_centroids()
        if centroids is None:
            raise DataError(f"{self.folder}: this run has no text space; place new users by their items instead.")
        return int(np.argmax(centroids @ np.asarray(vector, dtype=np.float32).ravel()))


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a run folder, complete or not, after checking every file against its sha256."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise DataError(
            f"{folder}: no {MANIFEST}; this is not a personas run folder (or the run was interrupted before its "
            "first stage finished). Run the pipeline again."
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
    return dict(manifest)


def load_run(folder: str | Path) -> RunArtefact:
    """Open a run folder, refusing it when any file is missing, added or changed since it was written.

    An incomplete run (a later stage failed) opens when its personas and users were kept; otherwise the
    error says which stage failed and how to resume."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    needed = ("users.parquet", "items.parquet", "personas.json")
    if manifest.get("status") == "incomplete" and not all((folder / name).is_file() for name in needed):
        raise DataError(
            f"{folder}: this run is incomplete: stage {manifest.get('failed_stage')!r} failed "
            f"({manifest.get('error')}), before any persona was kept. Fix that, then resume with: "
            f"{manifest.get('resume')}"
        )
    return RunArtefact(
        folder=folder,
        manifest=manifest,
        users=pd.read_parquet(folder / "users.parquet"),
        items=pd.read_parquet(folder / "items.parquet"),
        personas=personas_from_json(folder / "personas.json"),
    )
