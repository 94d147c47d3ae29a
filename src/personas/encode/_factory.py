"""Encoders from configs, or by kind name (for the CLI and for configs that name an encoder)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ValidationError

from personas.config import ComponentConfig, config_error, registry
from personas.encode._base import BaseEncoder
from personas.encode._behaviour import BehaviourEncoder, FusionEncoder
from personas.encode._cache import CachedEncoder, EmbeddingCache
from personas.encode._config import (
    BehaviourConfig,
    CachedConfig,
    EncoderConfigAdapter,
    FusionConfig,
    OnnxConfig,
)
from personas.errors import ConfigError

__all__ = ["ENCODER_KINDS", "EncoderKind", "encoder_config", "make_encoder"]

EncoderKind = Literal[
    "minilm",
    "minilm-onnx-fp32",
    "onnx",
    "sentence-transformers",
    "tfidf",
    "multilingual",
    "behaviour",
    "fusion",
    "cached",
]

#: What each kind of :func:`make_encoder` is.
ENCODER_KINDS: dict[str, str] = {
    "minilm": "all-MiniLM-L6-v2, fused int8 ONNX on onnxruntime (fast CPU default, 384-d); = onnx with defaults",
    "minilm-onnx-fp32": "all-MiniLM-L6-v2, fused fp32 ONNX (exported once into PERSONAS_HOME/models); "
    "= onnx with quantize=False",
    "onnx": "any BERT-style ONNX model (OnnxConfig); default all-MiniLM-L6-v2 in int8",
    "sentence-transformers": "all-MiniLM-L6-v2 (or model=PATH) on torch via sentence-transformers (384-d)",
    "tfidf": "TF-IDF + truncated SVD (call fit(texts) first)",
    "multilingual": "Universal Sentence Encoder multilingual v3 (512-d, Chinese included)",
    "behaviour": "users from their interactions (call fit(dataset) first)",
    "fusion": "text and behaviour in one vector (call fit(dataset) first)",
    "cached": "a text encoder whose vectors are kept in PERSONAS_HOME/embeddings",
}


def encoder_config(spec: ComponentConfig | Mapping[str, Any] | str | bytes) -> ComponentConfig:
    """An encoder config from a config, a dict with a ``kind`` key, or that dict as JSON text.

    ``encoder_config(config.model_dump_json()) == config`` for every encoder config.
    """
    if isinstance(spec, ComponentConfig):
        return spec
    try:
        if isinstance(spec, str | bytes):
            return EncoderConfigAdapter.validate_json(spec)
        return EncoderConfigAdapter.validate_python(dict(spec))
    except ValidationError as exc:
        raise config_error("the encoder config", exc) from None


def make_encoder(spec: EncoderKind | str | ComponentConfig | Mapping[str, Any] = "minilm", **params: Any) -> Any:
    """An encoder from a config (or its dict), or by kind name (see :data:`ENCODER_KINDS`) with ``params``
    as the config's fields: ``make_encoder("tfidf", n_components=64)``, ``make_encoder(OnnxConfig(threads=1))``,
    ``make_encoder({"kind": "multilingual"})``, ``make_encoder(config.model_dump_json())``.
    Fitted kinds (tfidf, behaviour, fusion) come back unfitted."""
    if isinstance(spec, str) and not spec.lstrip().startswith("{"):  # a kind name, not JSON text
        if spec == "minilm":
            config: ComponentConfig = OnnxConfig(**params)
        elif spec == "minilm-onnx-fp32":
            config = OnnxConfig(**{"quantize": False, **params})
        elif spec in ENCODER_KINDS:
            config = registry.config_class(spec, BaseEncoder)(**params)
        else:
            raise ConfigError(
                f"The 'kind' parameter of make_encoder must be one of {', '.join(ENCODER_KINDS)}. Got {spec!r} instead."
            )
    else:
        if params:
            raise ConfigError(f"make_encoder: pass either a config or a kind name with parameters, not both: {params}.")
        config = encoder_config(spec)
    return build_encoder(config)


def build_encoder(config: ComponentConfig) -> Any:
    """The encoder of a config, its parts built first (a cache's encoder, a fusion's text and behaviour
    encoders, an item-text behaviour encoder's text encoder), so that constructors take objects."""
    if isinstance(config, CachedConfig):
        return CachedEncoder(build_encoder(config.encoder), EmbeddingCache(config.directory))
    if isinstance(config, BehaviourConfig):
        text = None if config.text_encoder is None else build_encoder(config.text_encoder)
        return BehaviourEncoder(config, text_encoder=text)
    if isinstance(config, FusionConfig):
        return FusionEncoder(
            build_encoder(config.text_encoder),
            build_encoder(config.behaviour),
            text_weight=config.text_weight,
            profile_config=config.profile,
        )
    try:
        kind: str | None = registry.kind(config)
    except ConfigError:
        kind = None
    if kind not in registry.kinds(BaseEncoder):
        raise ConfigError(f"make_encoder: a {type(config).__name__} is not an encoder config.")
    return registry.build(config, BaseEncoder)
