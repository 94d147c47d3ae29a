"""Encoders: texts (and behaviour) -> unit-length float32 user vectors.

Every text encoder follows one contract (:class:`Encoder`)::

    vectors = encoder.encode(texts, batch_size=None, show_progress=None)   # float32 (n, d), unit rows

deterministic, with ``encoder.name`` / ``encoder.dim`` identifying its output for the cache. Texts may be
``str``, ``None`` (no text) or UTF-8 ``bytes``; ``None``/empty/whitespace-only texts get a defined vector
(the model's empty-text vector, or the corpus mean for fitted encoders); invalid UTF-8 raises DataError.

Which encoder:

- :class:`OnnxEncoder` — all-MiniLM-L6-v2 as int8 ONNX, the fast CPU default (``make_encoder("minilm")``).
- :class:`SentenceTransformerEncoder` — the same model (or any local sentence-transformers folder) on torch.
- :class:`TfidfEncoder` — TF-IDF + truncated SVD; no model, fit on your corpus first.
- :class:`MultilingualEncoder` — USE multilingual v3, for non-English text (Chinese included).
- :class:`BehaviourEncoder` — users from their interactions; :class:`FusionEncoder` / :func:`fuse` — text and
  behaviour in one vector.
- :class:`CachedEncoder` + :class:`EmbeddingCache` — any encoder, with vectors kept on disk.

:func:`as_vectors` accepts precomputed vectors (a 2-D array) wherever texts would be encoded.
"""

from __future__ import annotations

from typing import Any, Literal

from personas.encode._base import Encoder, TextInput, as_vectors
from personas.encode._behaviour import BehaviourEncoder, FusionEncoder, fuse
from personas.encode._cache import CachedEncoder, EmbeddingCache
from personas.encode._multilingual import MultilingualEncoder
from personas.encode._onnx import OnnxEncoder, export_onnx
from personas.encode._tfidf import TfidfEncoder
from personas.encode._transformer import SentenceTransformerEncoder
from personas.errors import ConfigError

__all__ = [
    "ENCODER_KINDS",
    "BehaviourEncoder",
    "CachedEncoder",
    "EmbeddingCache",
    "Encoder",
    "FusionEncoder",
    "MultilingualEncoder",
    "OnnxEncoder",
    "SentenceTransformerEncoder",
    "TextInput",
    "TfidfEncoder",
    "as_vectors",
    "export_onnx",
    "fuse",
    "make_encoder",
]

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
