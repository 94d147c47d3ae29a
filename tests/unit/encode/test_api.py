"""The public surface of personas.encode stays small and documented."""

from __future__ import annotations

import inspect

import pytest

import personas.encode as encode
from personas.errors import ConfigError


def test_public_names_are_exactly_the_curated_ones() -> None:
    public = {name for name in dir(encode) if not name.startswith("_")} - {"annotations"}
    assert set(encode.__all__) == public
    for name in encode.__all__:
        obj = getattr(encode, name)
        if isinstance(obj, type) or inspect.isfunction(obj):
            assert obj.__doc__, f"{name} has no docstring"


def test_make_encoder_builds_each_cheap_kind_and_rejects_unknown() -> None:
    assert isinstance(encode.make_encoder("minilm"), encode.OnnxEncoder)
    assert isinstance(encode.make_encoder("tfidf", n_components=8), encode.TfidfEncoder)
    assert isinstance(encode.make_encoder("multilingual"), encode.MultilingualEncoder)
    assert isinstance(encode.make_encoder("sentence-transformers"), encode.SentenceTransformerEncoder)
    with pytest.raises(ConfigError, match="'kind' parameter of make_encoder must be one of minilm"):
        encode.make_encoder("bert-large")
