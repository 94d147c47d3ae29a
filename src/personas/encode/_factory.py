"""Encoders by kind name, for the CLI and for configs that name an encoder."""

from __future__ import annotations

from typing import Any, Literal

from personas.encode._multilingual import MultilingualEncoder
from personas.encode._onnx import OnnxEncoder, export_onnx
from personas.encode._tfidf import TfidfEncoder
from personas.encode._transformer import SentenceTransformerEncoder
from personas.errors import ConfigError

__all__ = ["ENCODER_KINDS", "EncoderKind", "make_encoder"]

EncoderKind = Literal["minilm", "minilm-onnx-fp32", "sentence-transformers", "tfidf", "multilingual"]

#: What each kind of :func:`make_encoder` is.
ENCODER_KINDS: dict[str, str] = {
    "minilm": "all-MiniLM-L6-v2, int8 ONNX on onnxruntime (fast CPU default, 384-d)",
    "minilm-onnx-fp32": "all-MiniLM-L6-v2, fp32 ONNX export (exported once into PERSONAS_HOME/models; needs onnx)",
    "sentence-transformers": "all-MiniLM-L6-v2 (or model=PATH) on torch via sentence-transformers (384-d)",
    "tfidf": "TF-IDF + truncated SVD (call fit(texts) first)",
    "multilingual": "Universal Sentence Encoder multilingual v3 (512-d, Chinese included)",
}


def make_encoder(kind: EncoderKind | str = "minilm", **params: Any) -> Any:
    """An encoder by kind name (see :data:`ENCODER_KINDS`); ``params`` go to its constructor."""
    if kind == "minilm":
        return OnnxEncoder(**params)
    if kind == "minilm-onnx-fp32":
        return OnnxEncoder(export_onnx(params.pop("model", None)), **params)
    if kind == "sentence-transformers":
        return SentenceTransformerEncoder(**params)
    if kind == "tfidf":
        return TfidfEncoder(**params)
    if kind == "multilingual":
        return MultilingualEncoder(**params)
    raise ConfigError(
        f"The 'kind' parameter of make_encoder must be one of {', '.join(ENCODER_KINDS)}. Got {kind!r} instead."
    )
