"""Which text encoder suits a corpus' language, and the warning when an English-only model meets another."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Literal

from personas.config import ComponentConfig
from personas.encode._config import (
    BehaviourConfig,
    CachedConfig,
    FusionConfig,
    OnnxConfig,
    SentenceTransformerConfig,
)

if TYPE_CHECKING:  # the data layer loads pandas; encode is imported without it
    from personas.data.language import LanguageReport

__all__ = ["check_language", "is_english_only", "text_kind_for"]


def is_english_only(config: ComponentConfig) -> bool:
    """Whether the text model of ``config`` reads English only: all-MiniLM-L6-v2, the default model of the onnx
    and sentence-transformers kinds (a model given by path may be anything, so it is not judged)."""
    if isinstance(config, CachedConfig):
        return is_english_only(config.encoder)
    if isinstance(config, FusionConfig):
        return is_english_only(config.text_encoder)
    if isinstance(config, BehaviourConfig):
        return config.text_encoder is not None and is_english_only(config.text_encoder)
    return isinstance(config, OnnxConfig | SentenceTransformerConfig) and config.model is None


def text_kind_for(report: LanguageReport) -> Literal["minilm", "multilingual"]:
    """MiniLM for English (or an unknown language), the multilingual encoder (USE v3) for any other."""
    return "minilm" if report.code in (None, "en") else "multilingual"


def check_language(config: ComponentConfig, report: LanguageReport, *, stacklevel: int = 2) -> str | None:
    """A warning (issued, and returned for run summaries) when an English-only model is to encode a corpus
    detected as another language; None when they fit."""
    if report.code in (None, "en") or not is_english_only(config):
        return None
    message = (
        f"The text encoder is all-MiniLM-L6-v2, an English-only model, but {report.share:.0%} of {report.checked} "
        f"texts checked are {report.name}: its groups will be close to chance. Use the multilingual encoder: "
        '[encode] kind = "multilingual" (or "auto", which chooses it).'
    )
    warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)
    return message
