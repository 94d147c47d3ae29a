"""The Encoder contract and what every encoder shares: input cleaning, normalising, de-duplication, progress."""

from __future__ import annotations

import hashlib
import math
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np

from personas.config import Component, ComponentConfig
from personas.errors import ConfigError, DataError

__all__ = ["BaseEncoder", "ConfiguredEncoder", "Encoder", "TextInput", "as_vectors", "clean_texts", "unit_rows"]

#: What may stand for one text: a string, ``None`` (no text), or UTF-8 bytes.
TextInput = str | bytes | None

#: Above this many texts an encode shows a progress bar when ``show_progress`` is left at ``None``
#: and stderr is a terminal.
AUTO_PROGRESS_MIN = 2_000


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into unit-length float32 vectors.

    ``name`` and ``dim`` identify the encoder's output for the embedding cache: two encoders with the same
    name must give the same vector for the same text. ``encode`` is deterministic and the vector of a text
    does not depend on the batch it arrives in (up to float rounding, cosine > 0.99999).
    """

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(
        self, texts: Sequence[TextInput], *, batch_size: int | None = None, show_progress: bool | None = None
    ) -> np.ndarray: ...


def clean_texts(texts: Sequence[TextInput], *, where: str) -> list[str]:
    """Validate encoder input: each item becomes a ``str`` (``None``/NaN -> ``""``, whitespace collapsed at the ends).

    Bytes must be valid UTF-8, and strings must be encodable as UTF-8 (no lone surrogates, which appear when a
    file is read with ``errors="surrogateescape"``); otherwise a DataError names the first bad position.
    """
    if isinstance(texts, str | bytes):
        raise DataError(
            f"{where}.encode expects a sequence of texts, got a single {type(texts).__name__}; "
            "wrap it in a list: encode([text])."
        )
    if isinstance(texts, np.ndarray) and texts.dtype.kind == "f":
        raise DataError(
            f"{where}.encode got a float array; pass precomputed vectors to personas.encode.as_vectors "
            "instead of an encoder."
        )
    out: list[str] = []
    for i, text in enumerate(texts):
        if text is None or (isinstance(text, float) and math.isnan(text)):
            out.append("")
            continue
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{where}: text {i} is bytes that are not valid UTF-8 ({exc.reason} at byte {exc.start}). "
                    "Decode it first, e.g. data.decode('utf-8', errors='replace') or with its real encoding."
                ) from None
        if not isinstance(text, str):
            raise DataError(
                f"{where}: text {i} is a {type(text).__name__}, not a str, bytes or None. "
                "Convert it with str() or drop it."
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise DataError(
                f"{where}: text {i} holds a character that is not valid Unicode ({exc.reason} at position "
                f"{exc.start}), typical of a file read with errors='surrogateescape'. Re-read it with the right "
                "encoding or errors='replace'."
            ) from None
        out.append(text.strip())
    return out


def text_key(text: str) -> bytes:
    """sha256 of a cleaned text, the cache key of its vector under one encoder."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def unit_rows(vectors: np.ndarray, *, fallback: np.ndarray | None = None) -> np.ndarray:
    """Rows scaled to unit length, as float32. Rows of (near) zero length become ``fallback`` (a unit vector)
    or stay zero when there is no fallback."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    empty = norms[:, 0] < 1e-12
    out = vectors / np.where(empty[:, None], 1.0, norms)
    if empty.any() and fallback is not None:
        out[empty] = fallback
    return out.astype(np.float32)


def unique_texts(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """The distinct texts (first-seen order) and, for every input, the index of its distinct text."""
    index: dict[str, int] = {}
    inverse = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        inverse[i] = index.setdefault(text, len(index))
    return list(index), inverse


def check_batch_size(batch_size: int | None, default: int, where: str) -> int:
    if batch_size is None:
        return default
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(
            f"The 'batch_size' parameter of {where}.encode must be an int >= 1. Got {batch_size!r} instead."
        )
    return batch_size


def want_progress(show_progress: bool | None, n: int) -> bool:
    if show_progress is None:
        return n >= AUTO_PROGRESS_MIN and sys.stderr.isatty()
    return bool(show_progress)


@contextmanager
def progress_bar(total: int, description: str, enabled: bool, *, unit: str = "texts") -> Iterator[ProgressTick]:
    """A rich progress bar on stderr counting texts (or another ``unit``); a no-op when disabled."""
    if not enabled:
        yield ProgressTick(None, None)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield ProgressTick(progress, task)


class ProgressTick:
    """Advances a progress bar by a number of texts (does nothing without one)."""

    def __init__(self, progress: object, task: object) -> None:
        self._progress = progress
        self._task = task

    def __call__(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)  # type: ignore[attr-defined]


def fingerprint_files(paths: Sequence[Path], *, content: bool = True) -> str:
    """A short stable hash of files (their bytes, or only names and sizes for big weight files)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        if content:
            digest.update(path.read_bytes())
        else:
            digest.update(str(path.stat().st_size).encode())
    return digest.hexdigest()[:12]


def resolve_threads(threads: int | None, where: str) -> int:
    """``None`` -> every core this process may use; otherwise an int >= 1."""
    if threads is None:
        import os

        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"The 'threads' parameter of {where} must be an int >= 1 or None. Got {threads!r} instead.")
    return threads


def as_vectors(
    inputs: Sequence[TextInput] | np.ndarray,
    encoder: Encoder | None = None,
    *,
    batch_size: int | None = None,
    show_progress: bool | None = None,
) -> np.ndarray:
    """Precomputed vectors or texts -> unit float32 vectors.

    A 2-D numeric array is taken as precomputed vectors: checked (finite, no all-zero row) and
    normalised. Anything else is a sequence of texts, encoded with ``encoder``.
    """
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "fiu":
        if inputs.ndim != 2 or inputs.shape[1] == 0:
            raise DataError(f"Precomputed vectors must be a 2-D array (n, d); got shape {inputs.shape}.")
        if not np.isfinite(inputs).all():
            bad = int(np.flatnonzero(~np.isfinite(inputs).all(axis=1))[0])
            raise DataError(f"Precomputed vectors: row {bad} has NaN or infinite values; fix or drop that row.")
        norms = np.linalg.norm(inputs.astype(np.float64), axis=1)
        if (norms == 0).any():
            bad = int(np.flatnonzero(norms == 0)[0])
            raise DataError(
                f"Precomputed vectors: row {bad} is all zeros and has no direction; drop it or give it a vector."
            )
        return unit_rows(inputs)
    if encoder is None:
        raise ConfigError("as_vectors got texts but no encoder; pass encoder=... or precomputed vectors.")
    return encoder.encode(inputs, batch_size=batch_size, show_progress=show_progress)  # type: ignore[arg-type]


C = TypeVar("C", bound=ComponentConfig)


def resolve_config(owner: str, config_class: type[C], first: object, primary: str | None, params: dict[str, Any]) -> C:
    """The config of a new encoder from ``Owner(config)``, ``Owner(value, **params)`` or ``Owner(**params)``.

    ``first`` is the constructor's first positional argument: a config of ``config_class`` (then no other
    parameter may be given), or the value of its main parameter ``primary`` (``TfidfEncoder(256)`` is
    ``TfidfEncoder(n_components=256)``). Bad values raise ConfigError.
    """
    if isinstance(first, ComponentConfig):
        if not isinstance(first, config_class):
            raise ConfigError(f"{owner} needs a {config_class.__name__}; got a {type(first).__name__} instead.")
        if params:
            raise ConfigError(
                f"{owner}: pass either a config or parameters, not both (got a config and {sorted(params)})."
            )
        return first
    if first is not None:
        if primary is None:
            raise ConfigError(
                f"{owner} takes a {config_class.__name__} or keyword parameters. Got a {type(first).__name__} instead."
            )
        if primary in params:
            raise ConfigError(f"{owner}: {primary!r} was given twice (positionally and by name).")
        params = {primary: first, **params}
    return config_class(**params)


class BaseEncoder:
    """Marks personas' encoders: the family that ``registry.get(kind, BaseEncoder)`` looks in."""


class ConfiguredEncoder(Component[C], BaseEncoder):
    """An encoder built from its config alone: ``Encoder(config)``, ``Encoder(value, **params)`` (``value`` is
    the ``primary`` parameter, e.g. ``TfidfEncoder(256)``) or ``Encoder(**params)``."""

    primary: ClassVar[str | None] = None

    def __init__(self, config: object = None, /, **params: Any) -> None:
        self.config = resolve_config(type(self).__name__, self.Config, config, self.primary, params)  # type: ignore[assignment]


def resolve_device(device: str, *, usable: bool, where: str, what: str) -> str:
    """``"cpu"``/``"cuda"``/``"auto"`` -> where to run: ``"cuda"`` only when ``usable`` (a GPU is there and the
    library can use it). Asking for ``"cuda"`` without one warns and runs on the CPU; ``"auto"`` falls back silently.
    """
    if device == "cpu" or (device == "auto" and not usable):
        return "cpu"
    if usable:
        return "cuda"
    warnings.warn(
        f"{where}: device='cuda' was asked for but {what}; encoding on the CPU instead. "
        "Pass device='auto' to use a GPU only when there is one.",
        RuntimeWarning,
        stacklevel=4,
    )
    return "cpu"


def config_of(encoder: object, owner: str) -> Any:
    """The config of a part of ``owner`` (another encoder), to describe ``owner`` as a config; None stays None."""
    if encoder is None:
        return None
    config = getattr(encoder, "config", None)
    if not isinstance(config, ComponentConfig):
        raise ConfigError(
            f"{owner}: its encoder {type(encoder).__name__} has no config, so {owner} cannot be written as one. "
            "Use a personas encoder (or give yours a `config` attribute holding a ComponentConfig)."
        )
    return config
