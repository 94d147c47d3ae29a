"""The single-machine pipeline for data that do not fit in memory: users in chunks, every stage out of core.

``memory_budget`` (run config, default 4 GB) sets the chunk size (users per chunk) and the k-means sample.
``streaming = "on"`` always takes this path; ``"auto"`` (the default) takes it when the interactions would
need more than the budget in memory (:func:`wants_streaming`); ``"off"`` never.

Stages, each over chunks of users (a rich progress bar per stage):

- **load data**: the interactions are read from Parquet a batch at a time (``iter_batches``), their ids
  mapped to rows (a sorted array of the user ids and ``searchsorted``: no Python object per interaction) and
  appended to one Arrow IPC file per chunk of users (partition on write), so that each chunk later reads
  exactly its users' interactions. Users and items keep the in-memory path's row order (the users file's
  order, else first appearance).
- **profile texts**: per chunk, a :class:`~personas.data.Dataset` of its users and the in-memory builder
  (:func:`~personas.data.build_profiles`), so the texts are the same; written as one Parquet row group per
  chunk (``profiles.parquet``).
- **encode**: precomputed vectors (a ``.npy`` file, memory-mapped, rows in user order) are copied into the
  run's ``vectors.npy`` chunk by chunk; or a text encoder (fitted on a seeded sample of the texts where it
  needs fitting, e.g. TF-IDF) encodes each chunk into a memory-mapped ``vectors.npy``.
- **discover groups**: k-means fitted on a seeded sample (``kmeans_sample`` rows, else what the budget
  allows; all users when they fit), then every user assigned in batches in float64 (as the local engine's
  final assignment), groups numbered by size and first member. With the sample = all users the labels are
  those of the in-memory path. ``users.parquet`` (user_id, persona, x, y: PCA fitted on the sample) is
  written per chunk; ``quality.json`` is measured on the sample.
- **describe personas**: :class:`~personas.describe.streamed.GroupFacts`: per-group counts summed over
  chunks, then a second pass for representatives; the same scoring as ``describe_groups``.
- **fit recommenders**: most-popular and group-popular, their counts summed over chunks and their seen-items
  CSR written chunk by chunk (the saved-model format of :mod:`personas.store`).

Everything is written inside the run's temporary folder (:class:`~personas.pipeline.artefact.RunWriter`),
renamed into place complete at the end: an interrupted run leaves no half artefact. The chunk files of the
interactions live in a scratch folder beside the run folder, removed at the end (or on failure).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import scipy.sparse as sp
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from threadpoolctl import threadpool_limits

from personas._files import sha256_file
from personas.data import Dataset, build_profiles, detect_language
from personas.data.dataset import Vocabulary
from personas.data.loaders import _SCHEMA, Table, _canonical_frame, read_table
from personas.describe import personas_to_json
from personas.describe.streamed import AttributePlan, GroupFacts
from personas.discover import GroupingWarning, group_quality, make_finder
from personas.discover._base import compact_labels, nearest_centroid
from personas.encode import fitted_text_encoder, make_encoder, text_kind_for
from personas.errors import ConfigError, DataError
from personas.pipeline.artefact import RunWriter
from personas.pipeline.config import PipelineConfig
from personas.recommend.base import SAVED_FORMAT, tie_break_noise
from personas.store import MANIFEST as MODEL_MANIFEST
from personas.store.artefact import FORMAT_VERSION as MODEL_FORMAT

__all__ = ["StreamPlan", "StreamedPipeline", "StreamedResult", "plan_chunks", "wants_streaming"]

#: Bytes the in-memory path needs per interaction row at its peak (measured: 3.0-3.2 GB at 2 x 10^7 rows,
#: docs/results/scale.md); ``streaming = "auto"`` streams when the interactions would need more than the budget.
IN_MEMORY_BYTES_PER_INTERACTION = 160
#: Bytes one chunk needs per interaction and per user while it is processed (profile texts: sorted copies of
#: the interaction arrays, the joined strings; describe: the document x phrase counts), with headroom.
CHUNK_BYTES_PER_INTERACTION = 120
CHUNK_BYTES_PER_USER = 1_200
#: Bytes held for the whole run per user: ids (Arrow + a sorted fixed-width copy + its order), labels.
FIXED_BYTES_PER_USER = 48
#: The budget's share for k-means: the sample, its unit copy and faiss's working copy.
KMEANS_SHARE = 0.15
_MODELS = ("most-popular", "group-popular")
_CLASSES = {"most-popular": "MostPopular", "group-popular": "GroupPopular"}


def _interaction_rows(config: PipelineConfig) -> int | None:
    path = config.data.interactions
    if path is None or path.suffix.lower() != ".parquet" or not path.is_file():
        return None
    return int(pq.ParquetFile(path).metadata.num_rows)


def wants_streaming(config: PipelineConfig) -> bool:
    """Whether this run takes the streamed path: ``streaming = "on"``, or ``"auto"`` with Parquet
    interactions whose in-memory estimate (:data:`IN_MEMORY_BYTES_PER_INTERACTION` per row) exceeds
    ``memory_budget``."""
    if config.engine != "local" or config.streaming == "off":
        return False
    if config.streaming == "on":
        return True
    rows = _interaction_rows(config)
    return rows is not None and rows * IN_MEMORY_BYTES_PER_INTERACTION > config.memory_budget_bytes


@dataclass(frozen=True)
class StreamPlan:
    """How a streamed run cuts its work: users per chunk, k-means sample rows, Parquet batch rows."""

    chunk_users: int
    sample: int
    batch_rows: int


def plan_chunks(budget: int, n_users: int, n_interactions: int, dim: int, sample: int | None = None) -> StreamPlan:
    """Chunk sizes from the memory budget: what stays for the whole run (ids, labels, the k-means sample) is
    taken off first, then the chunk gets half of the rest (the other half is headroom for the libraries)."""
    per_user = CHUNK_BYTES_PER_USER + CHUNK_BYTES_PER_INTERACTION * n_interactions / max(n_users, 1) + 8 * dim
    k_rows = int(KMEANS_SHARE * budget / max(16 * dim, 1))
    sample_rows = min(n_users, sample if sample is not None else k_rows)
    free = budget - FIXED_BYTES_PER_USER * n_users - 16 * dim * sample_rows
    if free < budget * 0.2:
        need = (FIXED_BYTES_PER_USER * n_users + 16 * dim * sample_rows) / 0.8 / 2**30
        raise ConfigError(
            f"The 'memory_budget' parameter is too small for {n_users:,} users: the run needs at least "
            f"{need:.1f} GB. Got {budget / 2**30:.1f} GB instead."
        )
    chunk = int(0.5 * free / per_user)
    chunk = max(1, min(max(chunk, 1_000), n_users))
    return StreamPlan(chunk_users=chunk, sample=sample_rows, batch_rows=max(10_000, min(2_000_000, 4 * chunk)))


@dataclass
class StreamedResult:
    """What a streamed run keeps in memory: the run folder holds the rest (vectors, users, texts)."""

    folder: Path
    n_users: int
    n_items: int
    n_interactions: int
    n_groups: int
    plan: StreamPlan
    timings: dict[str, float] = field(default_factory=dict)
    personas: list[Any] = field(default_factory=list)


class _Ids:
    """External ids -> rows for many ids at once: a sorted fixed-width copy and ``searchsorted``."""

    def __init__(self, ids: pa.Array, kind: str) -> None:
        self.ids = ids
        self.kind = kind
        raw = _fixed(ids)
        self.order = np.argsort(raw, kind="stable").astype(np.int64)
        self.sorted = raw[self.order]
        if len(raw) > 1 and (self.sorted[1:] == self.sorted[:-1]).any():
            at = int(np.flatnonzero(self.sorted[1:] == self.sorted[:-1])[0])
            raise DataError(
                f"Duplicate {kind} id {self.sorted[at].decode()!r}. Each {kind} id must appear once in its file."
            )

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, values: pa.Array) -> np.ndarray:
        """Row of each value, -1 where the id is unknown."""
        encoded = values.dictionary_encode()
        raw = _fixed(encoded.dictionary, width=self.sorted.dtype.itemsize)
        pos = np.searchsorted(self.sorted, raw).clip(0, max(len(self.sorted) - 1, 0))
        found = self.sorted[pos] == raw if len(self.sorted) else np.zeros(len(raw), dtype=bool)
        rows = np.where(found, self.order[pos], -1)
        return rows[encoded.indices.to_numpy(zero_copy_only=False)]


def _fixed(ids: pa.Array, width: int | None = None) -> np.ndarray:
    """Ids as a numpy fixed-width bytes array (their UTF-8 bytes, zero-padded), built from the Arrow buffers
    without a Python object per id; ids longer than ``width`` can match nothing (they become ``b"\xff" *
    width``, which no shorter UTF-8 id equals)."""
    strings = pc.cast(ids, pa.large_string())
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    n = len(strings)
    _, offsets_buffer, data_buffer = strings.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[strings.offset : strings.offset + n + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    longest = int(lengths.max()) if n else 0
    size = max(width if width is not None else longest, 1)
    out = np.zeros((n, size), dtype=np.uint8)
    for j in range(min(size, longest)):  # one column of bytes at a time: a loop over the id length, not the ids
        has = lengths > j
        out[has, j] = data[offsets[:-1][has] + j]
    if width is not None and longest > width:
        out[lengths > width] = 0xFF
    return out.view(f"S{size}").ravel()


def _id_column(column: pa.ChunkedArray | pa.Array, where: str) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        raise DataError(f"{where}: {column.null_count} empty ids. Every row needs a non-empty id.")
    if pa.types.is_floating(column.type):
        column = pc.cast(column, pa.int64())  # 42.0 and 42 are the same id
    return pc.cast(column, pa.string())


class StreamedPipeline:
    """The streamed single-machine run (see the module docstring). ``vectors``: a ``.npy`` file of
    precomputed user vectors, one row per user in user order (the users file's order); without it the
    configured text encoder encodes chunk by chunk."""

    def __init__(
        self,
        config: PipelineConfig,
        *,
        vectors: str | Path | None = None,
        console: Console | None = None,
        scratch: str | Path | None = None,
        chunk_users: int | None = None,
    ) -> None:
        self.config = config
        self.vectors_path = None if vectors is None else Path(vectors)
        self.console = console or Console(stderr=True)
        self.scratch_parent = None if scratch is None else Path(scratch)
        self.chunk_users = chunk_users  # overrides the budget's chunk size (tests: many chunks on small data)
        self.timings: dict[str, float] = {}
        self.current_stage: str | None = None
        self._check_config()

    # ------------------------------------------------------------------------------------------ checks
    def _check_config(self) -> None:
        """What the streamed path cannot do is refused before any work."""
        config = self.config
        data = config.data
        if data.interactions is None or data.interactions.suffix.lower() != ".parquet":
            raise ConfigError(
                'The streamed engine reads interactions from a Parquet file ([data] interactions = "....parquet"). '
                f'Got {data.interactions or data.dataset!r} instead; convert the file, or set streaming = "off".'
            )
        if data.tags is not None:
            raise ConfigError('The streamed engine does not read tags; remove [data] tags or set streaming = "off".')
        unsupported = [m for m in config.recommend.model_configs() if m not in _MODELS]
        if unsupported:
            raise ConfigError(
                f"The streamed engine fits {', '.join(_MODELS)}; [recommend] models asks for "
                f'{", ".join(unsupported)} too. Remove them, or set streaming = "off".'
            )
        section = config.discover
        if section.method != "kmeans" or not isinstance(section.k, int) or section.hierarchy:
            raise ConfigError(
                'The streamed engine finds groups with k-means at a given k: set [discover] method = "kmeans", '
                f"k = <int>, hierarchy = false. Got method = {section.method!r}, k = {section.k!r}, "
                f'hierarchy = {section.hierarchy} instead (or set streaming = "off").'
            )
        if self.vectors_path is None and (
            config.encode.tune
            or not isinstance(config.encode.behaviour_weight, int | float)
            or config.encode.behaviour_weight > 0
        ):
            raise ConfigError(
                "The streamed engine encodes text only, chunk by chunk: set [encode] behaviour_weight = 0 and "
                f"tune = false, or give precomputed vectors. Got behaviour_weight = "
                f"{config.encode.behaviour_weight!r}, tune = {config.encode.tune} instead."
            )
        if self.vectors_path is not None and self.vectors_path.suffix.lower() != ".npy":
            raise ConfigError(
                f"Precomputed vectors for the streamed engine are a .npy file (rows in user order). "
                f"Got {str(self.vectors_path)!r} instead."
            )

    # ------------------------------------------------------------------------------------------ helpers
    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        self.current_stage = name
        self.console.print(f"[bold]▶ {name}[/] [dim](streamed)[/]", highlight=False)
        yield
        self.timings[name] = seconds = time.perf_counter() - start
        self.console.print(f"[green]✓ {name}[/] [dim]{seconds:.1f} s[/]", highlight=False)

    @contextmanager
    def progress(self, what: str, total: int) -> Iterator[Any]:
        bar = Progress(
            TextColumn("  {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        with bar:
            task = bar.add_task(what, total=total)
            yield lambda: bar.advance(task)

    def run(self) -> StreamedResult:
        limits = threadpool_limits(limits=self.config.threads) if self.config.threads is not None else None
        writer = RunWriter(self.config.output.dir)
        parent = self.scratch_parent or self.config.output.dir.parent
        self.scratch = Path(tempfile.mkdtemp(prefix=".personas-stream.", dir=parent))
        try:
            result = self._run(writer)
        except BaseException as exc:
            error = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
            writer.discard()  # a streamed run is not resumed: nothing half-done is kept
            self.console.print(
                f"[red]✗ {escape(self.current_stage or '?')} failed:[/] {escape(error)}", highlight=False
            )
            raise
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)
            if limits is not None:
                limits.unregister()
        return result

    # ------------------------------------------------------------------------------------------ stages
    def _run(self, writer: RunWriter) -> StreamedResult:
        manifest: dict[str, Any] = {"config": self.config.model_dump(mode="json")}
        with self.stage("load data"):
            self._load(writer)
        manifest["dataset"] = {
            "name": self.config.data.interactions.stem if self.config.data.interactions else "dataset",
            "fingerprint": self.fingerprint,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": self.n_interactions,
        }
        manifest["seeds"] = {"discover": self.config.discover.seed, "split": self.config.discover.seed}
        with self.stage("profile texts"):
            self._profiles(writer)
        with self.stage("encode"):
            encoder_name = self._encode(writer)
        manifest["encoder"] = {
            "name": encoder_name,
            "kind": self.config.encode.kind if self.vectors_path is None else "precomputed",
            "behaviour_weight": 0.0,
            "behaviour_weight_choice": None,
            "text_space": "text_vectors.npy" if self.vectors_path is None else None,
        }
        with self.stage("discover groups"):
            quality = self._discover(writer)
        manifest["grouping"] = quality.get("grouping")
        with self.stage("describe personas"):
            personas = self._describe(writer)
        manifest["n_personas"] = len(personas)
        manifest["name_fidelity"] = None
        with self.stage("fit recommenders"):
            models = self._fit_models(writer)
        if self.config.evaluate.enabled:
            self.console.print(
                "[yellow]Warning:[/] evaluation skipped: the streamed engine does not evaluate. To evaluate, "
                'run a sample of the users with streaming = "off".',
                highlight=False,
            )
        manifest["evaluation"] = {"status": "skipped" if self.config.evaluate.enabled else "disabled"}
        manifest["streamed"] = {
            "memory_budget": self.config.memory_budget_bytes,
            "chunk_users": self.plan.chunk_users,
            "chunks": len(self.chunks),
            "kmeans_sample": self.plan.sample,
        }
        with self.stage("write artefacts"):
            writer.finish({**manifest, "timings": dict(self.timings), "reused_stages": []}, models)
        return StreamedResult(
            folder=self.config.output.dir,
            n_users=self.n_users,
            n_items=self.n_items,
            n_interactions=self.n_interactions,
            n_groups=self.n_groups,
            plan=self.plan,
            timings=self.timings,
            personas=personas,
        )

    # .............................................................................................. load
    def _load(self, writer: RunWriter) -> None:
        data = self.config.data
        assert data.interactions is not None
        columns = {str(kind): mapping for kind, mapping in data.columns.items()}
        items = (
            _entity_frame(
                read_table(data.items, "items", columns=columns.get("items")).frame, "item_id", ("title", "text")
            )
            if data.items is not None
            else None
        )
        source = pq.ParquetFile(data.interactions)
        mapping = {canon: canon for canon in _SCHEMA["interactions"]} | dict(columns.get("interactions") or {})
        names = set(source.schema_arrow.names)
        present = {canon: src for canon, src in mapping.items() if src in names}
        for required in ("user_id", "item_id"):
            if required not in present:
                raise DataError(
                    f"{data.interactions}: required interactions column {mapping[required]!r} (for {required!r}) "
                    f"is missing. Columns present: {sorted(names)}."
                )
        self.n_interactions = int(source.metadata.num_rows)
        if data.users is not None:
            users_file = pq.ParquetFile(data.users) if data.users.suffix.lower() == ".parquet" else None
            if users_file is None:
                raise ConfigError(
                    f"The streamed engine reads the users file as Parquet. Got {str(data.users)!r} instead."
                )
            id_col = dict(columns.get("users") or {}).get("user_id", "user_id")
            user_ids = _id_column(pq.read_table(data.users, columns=[id_col])[id_col], str(data.users))
        else:
            user_ids = self._first_seen(source, present["user_id"])
        if items is not None:
            item_ids = pa.array(items["item_id"].astype(str).tolist(), type=pa.string())
        else:
            item_ids = self._first_seen(source, present["item_id"])
            items = pd.DataFrame({"item_id": item_ids.to_numpy(zero_copy_only=False).astype(object)})
            items = _entity_frame(items, "item_id", ("title", "text"))
        self.user_ids = user_ids
        self.users_lookup = _Ids(user_ids, "user")
        items_lookup = _Ids(item_ids, "item")
        self.items = items
        self.item_vocab = Vocabulary(items["item_id"], kind="item")
        self.n_users, self.n_items = len(user_ids), len(item_ids)
        dim = self._vector_dim()
        self.plan = plan_chunks(
            self.config.memory_budget_bytes, self.n_users, self.n_interactions, dim, self.config.kmeans_sample
        )
        if self.chunk_users is not None:
            self.plan = replace(self.plan, chunk_users=self.chunk_users, batch_rows=max(1_000, 4 * self.chunk_users))
        size = self.plan.chunk_users
        self.chunks = [(a, min(a + size, self.n_users)) for a in range(0, self.n_users, size)]
        self.console.print(
            f"  {self.n_users:,} users, {self.n_items:,} items, {self.n_interactions:,} interactions; "
            f"{len(self.chunks)} chunks of <= {size:,} users (memory_budget "
            f"{self.config.memory_budget_bytes / 2**30:.1f} GB)",
            highlight=False,
        )
        wanted = [present[c] for c in ("user_id", "item_id", "rating", "timestamp", "review") if c in present]
        sinks: dict[int, ipc.RecordBatchFileWriter] = {}
        schema = pa.schema(
            [("user", pa.int32()), ("item", pa.int32()), ("rating", pa.float64()), ("timestamp", pa.int64())]
            + ([("review", pa.string())] if "review" in present else [])
        )
        digest = hashlib.sha256()
        self.has_ratings = False
        dropped = 0
        n_batches = max(1, -(-self.n_interactions // self.plan.batch_rows))
        try:
            with self.progress("interactions -> chunks", n_batches) as advance:
                for batch in source.iter_batches(batch_size=self.plan.batch_rows, columns=wanted):
                    users = self.users_lookup.rows(_id_column(batch.column(present["user_id"]), str(data.interactions)))
                    items_ = items_lookup.rows(_id_column(batch.column(present["item_id"]), str(data.interactions)))
                    known = (users >= 0) & (items_ >= 0)
                    if not known.all():
                        if data.unknown_ids == "error":
                            row = int(np.flatnonzero(~known)[0])
                            raise DataError(
                                f"{data.interactions}: an interaction names an id the users/items files do not know "
                                f"(user {batch.column(present['user_id'])[row]}, item "
                                f"{batch.column(present['item_id'])[row]}). Add it to the file, or set "
                                '[data] unknown_ids = "drop".'
                            )
                        dropped += int((~known).sum())
                    ratings = _numbers(batch, present.get("rating"), len(users))
                    times = _numbers(batch, present.get("timestamp"), len(users))
                    self.has_ratings |= bool((~np.isnan(ratings[known])).any())
                    arrays: dict[str, Any] = {
                        "user": users.astype(np.int32),
                        "item": items_.astype(np.int32),
                        "rating": ratings,
                        "timestamp": np.where(np.isnan(times), -1, times).astype(np.int64),
                    }
                    if "review" in present:
                        arrays["review"] = pc.cast(batch.column(present["review"]), pa.string())
                    chunk_of = np.where(known, users // size, -1)
                    for chunk in np.unique(chunk_of[known]).tolist():
                        take = pa.array(np.flatnonzero(chunk_of == chunk))
                        part = pa.record_batch([pa.array(arrays[n]).take(take) for n in schema.names], schema=schema)
                        if chunk not in sinks:
                            sinks[chunk] = ipc.new_file(self.scratch / f"chunk-{chunk:05d}.arrow", schema)
                        sinks[chunk].write_batch(part)
                        digest.update(np.asarray(part.column(0)).tobytes())
                        digest.update(np.asarray(part.column(1)).tobytes())
                    advance()
        finally:
            for sink in sinks.values():
                sink.close()
        self.schema = schema
        self.n_interactions -= dropped
        if dropped:
            self.console.print(f"[yellow]Warning:[/] {dropped:,} interactions with unknown ids dropped.")
        for part in (user_ids, item_ids):  # the ids, in row order: their string data and offsets
            for buffer in part.buffers():
                if buffer is not None:
                    digest.update(buffer)
        self.fingerprint = digest.hexdigest()
        titles = items["title"] if "title" in items else items["item_id"]
        frame = pd.DataFrame({"item_id": items["item_id"].astype(str), "title": titles.fillna("").astype(str)})
        writer.stage_done("load data", self.fingerprint, writer.write(frames={"items.parquet": frame}))

    def _first_seen(self, source: pq.ParquetFile, column: str) -> pa.Array:
        """Distinct ids of ``column`` in order of first appearance (the in-memory loader's order)."""
        parts = []
        for batch in source.iter_batches(batch_size=2_000_000, columns=[column]):
            parts.append(_id_column(batch.column(0), column).dictionary_encode().dictionary)
        return pc.unique(pa.concat_arrays(parts)) if parts else pa.array([], type=pa.string())

    def _vector_dim(self) -> int:
        if self.vectors_path is None:
            return 384
        try:
            vectors = np.load(self.vectors_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{self.vectors_path}: not a readable .npy file ({exc}).") from None
        shape = vectors.shape
        del vectors
        if len(shape) != 2 or shape[0] != self.n_users:
            raise DataError(
                f"{self.vectors_path}: vectors of shape {shape}; expected ({self.n_users:,}, dim), one row per user "
                "in the users file's order."
            )
        return int(shape[1])

    # .............................................................................................. chunks
    def _users_frames(self) -> Iterator[pd.DataFrame]:
        """The users table, chunk by chunk, canonical as the in-memory loader makes it."""
        data = self.config.data
        if data.users is None:
            for a, b in self.chunks:
                ids = self.user_ids.slice(a, b - a).to_numpy(zero_copy_only=False).astype(object)
                yield _entity_frame(pd.DataFrame({"user_id": ids}), "user_id", ("text",))
            return
        columns = dict(self.config.data.columns.get("users") or {})
        schema = _SCHEMA["users"]
        mapping = {name: name for name in schema} | columns
        source = pq.ParquetFile(data.users)
        header = list(source.schema_arrow.names)
        present = {canon: src for canon, src in mapping.items() if src in header}
        pending: list[pa.RecordBatch] = []
        have = 0
        batches = source.iter_batches(batch_size=min(self.plan.chunk_users, 1_000_000))
        for a, b in self.chunks:
            while have < b - a:
                batch = next(batches)
                pending.append(batch)
                have += batch.num_rows
            table = pa.Table.from_batches(pending)
            head, rest = table.slice(0, b - a), table.slice(b - a)
            pending, have = rest.to_batches(), rest.num_rows
            raw = head.to_pandas()
            frame = _canonical_frame(Table(data.users, "parquet", "users", raw, present, header), schema)
            yield _entity_frame(frame, "user_id", ("text",))

    def _chunks(
        self, *, users: bool = True, interactions: bool = True
    ) -> Iterator[tuple[int, int, Dataset | None, pa.Table]]:
        """(first row, end row, the chunk's Dataset (users=False: None), its interactions (interactions=False:
        none)) per chunk."""
        frames = self._users_frames() if users else iter(())
        for index, (a, b) in enumerate(self.chunks):
            path = self.scratch / f"chunk-{index:05d}.arrow"
            if path.exists() and interactions:
                with pa.memory_map(str(path)) as handle:
                    table = ipc.open_file(handle).read_all()
            else:
                table = self.schema.empty_table()
            dataset = None
            if users:
                frame = next(frames)
                n = len(table)
                reviews = np.empty(n, dtype=object)
                if "review" in table.column_names:
                    reviews[:] = table["review"].to_numpy(zero_copy_only=False)
                dataset = Dataset.from_rows(
                    frame,
                    self.items,
                    user_rows=table["user"].to_numpy() - a,
                    item_rows=table["item"].to_numpy(),
                    ratings=table["rating"].to_numpy(),
                    timestamps=table["timestamp"].to_numpy(),
                    reviews=reviews,
                    name="chunk",
                    vocabularies=(Vocabulary(frame["user_id"], kind="user"), self.item_vocab),
                )
            yield a, b, dataset, table

    def _vectors(self, path: Path, a: int, b: int) -> np.ndarray:
        """Rows ``a:b`` of a .npy file, copied out of a mapping that is closed again (no page stays resident)."""
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        try:
            return np.array(mapped[a:b], dtype=np.float32)
        finally:
            del mapped

    # .............................................................................................. profiles
    def _profiles(self, writer: RunWriter) -> None:
        self.attributes = AttributePlan(_describe_config())
        path = writer.tmp / "profiles.parquet"
        schema = pa.schema([("user_id", pa.string()), ("text", pa.string())])
        with pq.ParquetWriter(path, schema) as sink, self.progress("profile texts", len(self.chunks)) as advance:
            for _, _, dataset, _ in self._chunks():
                assert dataset is not None
                self.attributes.add(dataset.users)
                texts = build_profiles(dataset, self.config.profiles)
                ids = pa.array(dataset.user_vocab.ids.tolist(), type=pa.string())
                sink.write_table(pa.table({"user_id": ids, "text": pa.array(texts, type=pa.string())}, schema=schema))
                advance()
        writer.stage_done("profile texts", self.fingerprint, ["profiles.parquet"])

    def _texts(self, writer: RunWriter) -> Iterator[list[str]]:
        source = pq.ParquetFile(writer.tmp / "profiles.parquet")
        for group in range(source.num_row_groups):
            yield source.read_row_group(group, columns=["text"])["text"].to_pylist()

    # .............................................................................................. encode
    def _encode(self, writer: RunWriter) -> str:
        target = writer.tmp / "vectors.npy"
        out: np.ndarray | None
        if self.vectors_path is not None:
            mapped = np.load(self.vectors_path, mmap_mode="r", allow_pickle=False)
            dim, dtype = mapped.shape[1], mapped.dtype
            del mapped
            out = np.lib.format.open_memmap(target, mode="w+", dtype=np.float32, shape=(self.n_users, dim))
            with self.progress("vectors", len(self.chunks)) as advance:
                for a, b in self.chunks:
                    block = self._vectors(self.vectors_path, a, b)
                    if not np.isfinite(block).all():
                        raise DataError(f"{self.vectors_path}: rows {a:,}..{b - 1:,} hold NaN or inf values.")
                    out[a:b] = block
                    out.flush()
                    advance()
            del out
            writer.stage_done("encode", self.fingerprint, ["vectors.npy"], encoder="precomputed")
            self.dim = int(dim)
            return f"precomputed({dtype}, {dim}-d)"
        section = self.config.encode
        rng = np.random.default_rng(self.config.discover.seed)
        sample_rows = np.sort(rng.choice(self.n_users, min(self.n_users, 20_000), replace=False))
        sample: list[str] = []
        start = 0
        for texts in self._texts(writer):
            end = start + len(texts)
            sample.extend(texts[r - start] for r in sample_rows[(sample_rows >= start) & (sample_rows < end)])
            start = end
        if section.kind == "auto":
            section = section.model_copy(update={"kind": text_kind_for(detect_language(sample))})
        encoder = fitted_text_encoder(make_encoder(section.text_config(None)), sample)
        out = None
        with self.progress("encode", len(self.chunks)) as advance:
            for (a, b), texts in zip(self.chunks, self._texts(writer), strict=True):
                block = np.asarray(encoder.encode(texts, batch_size=section.batch_size), dtype=np.float32)
                if out is None:
                    out = np.lib.format.open_memmap(
                        target, mode="w+", dtype=np.float32, shape=(self.n_users, block.shape[1])
                    )
                out[a:b] = block
                out.flush()
                advance()
        assert out is not None
        self.dim = int(out.shape[1])
        del out
        os.link(target, writer.tmp / "text_vectors.npy")
        writer.stage_done("encode", self.fingerprint, ["vectors.npy", "text_vectors.npy"], encoder=encoder.name)
        return f"text={encoder.name}"

    # .............................................................................................. discover
    def _discover(self, writer: RunWriter) -> dict[str, Any]:
        vectors = writer.tmp / "vectors.npy"
        seed = self.config.discover.seed
        rng = np.random.default_rng(seed)
        n = self.n_users
        rows = np.arange(n) if self.plan.sample >= n else np.sort(rng.choice(n, self.plan.sample, replace=False))
        sample = np.empty((len(rows), self.dim), dtype=np.float32)
        for a, b in self.chunks:
            lo, hi = np.searchsorted(rows, [a, b])
            if hi > lo:
                sample[lo:hi] = self._vectors(vectors, a, b)[rows[lo:hi] - a]
        assert isinstance(self.config.discover.k, int)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", GroupingWarning)
            finder_config: Any = self.config.discover.finder_config(self.config.discover.k)
            finder = make_finder(finder_config).fit(sample)
        for warning in caught:
            self.console.print(f"[yellow]Warning:[/] {warning.message}", highlight=False)
        centroids = np.asarray(finder.centroids_, dtype=np.float32)
        labels = np.empty(n, dtype=np.int64)
        with self.progress("assign", len(self.chunks)) as advance:
            for a, b in self.chunks:
                block = self._vectors(vectors, a, b)
                norms = np.linalg.norm(block, axis=1, keepdims=True)
                unit = np.divide(block, norms, out=np.zeros_like(block), where=norms > 0)
                labels[a:b] = nearest_centroid(unit, centroids, exact=True)[0]
                advance()
        labels, _ = compact_labels(labels)  # numbered by size and first member, as the in-memory finder does
        self.labels = labels
        self.n_groups = int(labels.max()) + 1 if n and labels.max() >= 0 else 0
        quality = group_quality(sample, labels[rows], seed=seed).model_dump()
        if finder.report_ is not None:
            quality["grouping"] = finder.report_.model_dump()
        quality["sample"] = {"rows": len(rows), "of": n}
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed).fit(sample.astype(np.float64)) if len(rows) >= 3 else None
        del sample
        schema = pa.schema(
            [("user_id", pa.string()), ("persona", pa.int64()), ("x", pa.float64()), ("y", pa.float64())]
        )
        with pq.ParquetWriter(writer.tmp / "users.parquet", schema) as sink:
            for a, b in self.chunks:
                xy = (
                    np.zeros((b - a, 2))
                    if pca is None
                    else pca.transform(self._vectors(vectors, a, b).astype(np.float64))
                )
                sink.write_table(
                    pa.table(
                        {
                            "user_id": self.user_ids.slice(a, b - a),
                            "persona": labels[a:b],
                            "x": xy[:, 0],
                            "y": xy[:, 1],
                        },
                        schema=schema,
                    )
                )
        files: dict[str, bytes | str] = {"quality.json": json.dumps({"quality": quality}, indent=2, default=float)}
        arrays: dict[str, np.ndarray] = {}
        if self.vectors_path is None:  # the text space: new users are placed at their nearest text centroid
            sums = np.zeros((self.n_groups, self.dim))
            for a, b in self.chunks:
                block = self._vectors(vectors, a, b)
                np.add.at(sums, labels[a:b], block.astype(np.float64))
            norms = np.linalg.norm(sums, axis=1, keepdims=True)
            arrays["text_centroids.npy"] = np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0).astype(
                np.float32
            )
        written = writer.write(files=files, arrays=arrays)
        writer.stage_done("discover groups", self.fingerprint, [*written, "users.parquet"])
        return quality

    # .............................................................................................. describe
    def _describe(self, writer: RunWriter) -> list[Any]:
        vectors = writer.tmp / "vectors.npy"
        facts = GroupFacts(
            self.n_groups,
            item_ids=self.item_vocab.ids,
            titles=self.items["title"].fillna("").astype(str).to_numpy(),
            user_ids=self.user_ids,
            has_ratings=self.has_ratings,
            attributes=self.attributes.chosen(),
            config=_describe_config(),
        )
        with self.progress("describe: counts", len(self.chunks)) as advance:
            for a, b, dataset, _ in self._chunks():
                assert dataset is not None
                facts.add(dataset, self.labels[a:b], self._vectors(vectors, a, b))
                advance()
        if facts.needs_texts:  # nobody has descriptive words: keywords from the profile texts, as in memory
            for (a, b), texts in zip(self.chunks, self._texts(writer), strict=True):
                facts.add_texts(texts, self.labels[a:b])
        facts.keywords()
        with self.progress("describe: representatives", len(self.chunks)) as advance:
            # Quotes need the users' own words: without any, this pass reads only vectors and labels.
            for a, b, dataset, _ in self._chunks(users=facts.wrote, interactions=facts.wrote):
                ids = self.user_ids.slice(a, b - a).to_pylist()
                facts.add_representatives(dataset, self.labels[a:b], self._vectors(vectors, a, b), a, ids)
                advance()
        personas = facts.personas()
        written = writer.write(files={"personas.json": personas_to_json(personas)})
        writer.stage_done("describe personas", self.fingerprint, written)
        return personas

    # .............................................................................................. models
    def _fit_models(self, writer: RunWriter) -> list[str]:
        """most-popular and group-popular as :meth:`Recommender.save` writes them, their seen-items CSR built
        chunk by chunk into raw files and given a .npy header at the end."""
        n_groups, n_items = self.n_groups, self.n_items
        indices_raw = self.scratch / "seen_indices.raw"
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        popularity = np.zeros(n_items)
        counts = np.zeros((n_groups, n_items))
        sizes = np.zeros(n_groups)
        active_users = 0
        with indices_raw.open("wb") as sink, self.progress("recommenders", len(self.chunks)) as advance:
            for a, b, _, table in self._chunks(users=False):
                users = table["user"].to_numpy() - a
                seen = sp.csr_matrix((np.ones(len(users)), (users, table["item"].to_numpy())), shape=(b - a, n_items))
                seen.sum_duplicates()
                seen.sort_indices()
                sink.write(seen.indices.astype(np.int32).tobytes())
                indptr[a + 1 : b + 1] = indptr[a] + seen.indptr[1:]
                popularity += np.bincount(seen.indices, minlength=n_items)
                labels = self.labels[a:b]
                rows = np.repeat(np.arange(b - a), np.diff(seen.indptr))
                cells = labels[rows] * n_items + seen.indices
                counts += np.bincount(cells[labels[rows] >= 0], minlength=n_groups * n_items).reshape(n_groups, n_items)
                active = np.diff(seen.indptr) > 0
                active_users += int(active.sum())
                sizes += np.bincount(labels[active & (labels >= 0)], minlength=n_groups)
                advance()
        nnz = int(indptr[-1])
        index_dtype = np.int32 if nnz < 2**31 else np.int64
        configs = self.config.recommend.model_configs()
        shared = {
            "item_ids": np.asarray(self.item_vocab.ids, dtype=str),
            "seen_indptr": indptr.astype(index_dtype),
            "popularity": popularity,
            "tie_break": tie_break_noise(n_items),
        }
        global_rate = popularity / max(active_users, 1.0)
        names = []
        first: Path | None = None
        for name, config in configs.items():
            arrays = dict(shared)
            if name == "group-popular":
                s = float(config.shrinkage)  # type: ignore[attr-defined]
                denom = sizes[:, None] + s
                with np.errstate(invalid="ignore", divide="ignore"):
                    rates = (counts + s * global_rate[None, :]) / denom
                arrays.update(
                    {
                        "model.labels": self.labels,
                        "model.group_scores": np.where(denom > 0, rates, global_rate[None, :]),
                        "model.global_rate": global_rate,
                        "model.group_sizes": sizes,
                    }
                )
            meta = {"class": _CLASSES[name], "format": SAVED_FORMAT, "config": config.model_dump(mode="json")}
            folder = writer.tmp / "models" / name
            folder.mkdir(parents=True)
            if first is None:  # the large arrays are written once, the second model links them
                self._write_user_ids(folder / "user_ids.npy")
                _npy_from_raw(indices_raw, folder / "seen_indices.npy", np.int32, nnz)
                first = folder
            else:
                for file in ("user_ids.npy", "seen_indices.npy"):
                    os.link(first / file, folder / file)
            _save_model(folder, arrays, meta)
            names.append(name)
        written = sorted(
            p.relative_to(writer.tmp).as_posix() for p in (writer.tmp / "models").rglob("*") if p.is_file()
        )
        writer.stage_done("fit recommenders", self.fingerprint, written, models=sorted(names))
        return names

    def _write_user_ids(self, path: Path) -> None:
        """All user ids as a fixed-width str .npy, chunk by chunk."""
        width = max(int(pc.max(pc.utf8_length(self.user_ids)).as_py() or 1), 1)
        out = np.lib.format.open_memmap(path, mode="w+", dtype=f"<U{width}", shape=(self.n_users,))
        for a, b in self.chunks:
            out[a:b] = np.asarray(self.user_ids.slice(a, b - a).to_numpy(zero_copy_only=False), dtype=f"<U{width}")
        out.flush()
        del out


def _npy_from_raw(raw: Path, target: Path, dtype: type[np.generic], count: int) -> None:
    """A .npy file from a raw file of ``count`` values: the header, then the bytes copied in blocks."""
    with target.open("wb") as out, raw.open("rb") as source:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": (count,)}
        np.lib.format.write_array_header_1_0(out, header)
        shutil.copyfileobj(source, out, length=16 << 20)


def _save_model(folder: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """The rest of a model folder (:func:`personas.store.save`'s layout) beside its already written files."""
    files: dict[str, str] = {}
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", np.asarray(array), allow_pickle=False)
    for path in sorted(folder.glob("*.npy")):
        files[path.name] = sha256_file(path)
    manifest = {"format": "personas-artefact", "version": MODEL_FORMAT, "meta": meta, "files": files}
    (folder / MODEL_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")


def _numbers(batch: pa.RecordBatch, column: str | None, n: int) -> np.ndarray:
    if column is None:
        return np.full(n, np.nan)
    values = batch.column(column)
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        raise DataError(f"The interactions column {column!r} must hold numbers. Got {values.type} instead.")
    return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)


def _entity_frame(frame: pd.DataFrame, id_col: str, extra: tuple[str, ...]) -> pd.DataFrame:
    """The users/items table with the columns the in-memory loader puts first (missing ones as None)."""
    frame = frame.copy()
    for col in extra:
        if col not in frame:
            frame[col] = None
    front = [id_col, *extra]
    return frame[front + [c for c in frame.columns if c not in front]].reset_index(drop=True)


def _describe_config() -> Any:
    from personas.describe import DescribeConfig

    return DescribeConfig()
