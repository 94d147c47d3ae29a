"""Encoders: texts (and behaviour) -> unit-length float32 user vectors.

Every text encoder follows one contract (:class:`Encoder`)::

    vectors = encoder.encode(texts, batch_size=None, show_progress=None)   # float32 (n, d), unit rows

deterministic, with ``encoder.name`` / ``encoder.dim`` identifying its output for the cache. Every encoder is
built from a small frozen config (``OnnxConfig``, ``TfidfConfig``, ...; ``encoder.config``) that round-trips
through JSON: ``make_encoder(encoder_config(json_text))``. Texts may be ``str``, ``None`` (no text) or UTF-8
``bytes``; ``None``/empty/whitespace-only texts all get one defined vector (the model's empty-text vector, or the
corpus mean for fitted encoders); a 100,000-character text gets a unit vector (truncated by the model); invalid
UTF-8 or lone surrogates raise DataError naming the text. Model encoders take ``device="cpu" | "cuda" | "auto"``
(``"cuda"`` without a usable GPU warns and runs on the CPU).

Which encoder:

- :class:`OnnxEncoder` — all-MiniLM-L6-v2 on onnxruntime with int8 matrix multiplies, the fast CPU default
  (``make_encoder("minilm")``; cosine ~0.995 to the fp32 model); :func:`quantize_onnx` builds such models.
- :class:`SentenceTransformerEncoder` — the same model (or any local sentence-transformers folder) on torch.
- :class:`TfidfEncoder` — TF-IDF + truncated SVD; no model, fit on your corpus first.
- :class:`MultilingualEncoder` — USE multilingual v3, for non-English text (Chinese included);
  :func:`text_kind_for` picks it from a :func:`personas.data.detect_language` report, and :func:`check_language`
  warns when an English-only model (:func:`is_english_only`) meets another language.
- :class:`BehaviourEncoder` — users from their interactions; :class:`FusionEncoder` / :func:`fuse` — text and
  behaviour in one vector.
- :class:`CachedEncoder` + :class:`EmbeddingCache` — any encoder, with vectors kept on disk.
- :class:`TunedEncoder` — any text encoder followed by a :class:`ProjectionHead` that :func:`tune_head` trains
  on interactions (users' and items' texts against the items taken with them; :class:`TuneConfig`).

:func:`as_vectors` accepts precomputed vectors (a 2-D array) wherever texts would be encoded.
"""

from __future__ import annotations

from personas.encode._base import BaseEncoder, Encoder, TextInput, as_vectors
from personas.encode._behaviour import BehaviourEncoder, FusionEncoder, fitted_text_encoder, fuse
from personas.encode._cache import CachedEncoder, EmbeddingCache
from personas.encode._config import (
    BehaviourConfig,
    CachedConfig,
    Device,
    EncoderConfig,
    FusionConfig,
    MultilingualConfig,
    OnnxConfig,
    SentenceTransformerConfig,
    TextEncoderConfig,
    TfidfConfig,
)
from personas.encode._factory import ENCODER_KINDS, EncoderKind, encoder_config, make_encoder
from personas.encode._language import check_language, is_english_only, text_kind_for
from personas.encode._multilingual import MultilingualEncoder
from personas.encode._onnx import OnnxEncoder, export_onnx, quantize_onnx
from personas.encode._query import encode_queries, encode_query
from personas.encode._tfidf import TfidfEncoder
from personas.encode._transformer import SentenceTransformerEncoder
from personas.encode._tuned import ProjectionHead, TuneConfig, TunedEncoder, tune_head

__all__ = [
    "ENCODER_KINDS",
    "BaseEncoder",
    "BehaviourConfig",
    "BehaviourEncoder",
    "CachedConfig",
    "CachedEncoder",
    "Device",
    "EmbeddingCache",
    "Encoder",
    "EncoderConfig",
    "EncoderKind",
    "FusionConfig",
    "FusionEncoder",
    "MultilingualConfig",
    "MultilingualEncoder",
    "OnnxConfig",
    "OnnxEncoder",
    "ProjectionHead",
    "SentenceTransformerConfig",
    "SentenceTransformerEncoder",
    "TextEncoderConfig",
    "TextInput",
    "TfidfConfig",
    "TfidfEncoder",
    "TuneConfig",
    "TunedEncoder",
    "as_vectors",
    "check_language",
    "encode_queries",
    "encode_query",
    "encoder_config",
    "export_onnx",
    "fitted_text_encoder",
    "fuse",
    "is_english_only",
    "make_encoder",
    "quantize_onnx",
    "text_kind_for",
    "tune_head",
]
