"""The public surface of personas.encode stays small and documented."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

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


@pytest.mark.parametrize("kind", list(encode.ENCODER_KINDS))
def test_every_kind_has_a_config_that_round_trips_through_json(kind: str) -> None:
    built = encode.make_encoder(kind)  # nothing is loaded or fitted yet
    config = built.config
    text = config.model_dump_json()
    assert encode.encoder_config(text) == config
    assert encode.encoder_config(json.loads(text)) == config
    assert type(encode.make_encoder(text)) is type(built)
    with pytest.raises(ValidationError):  # frozen
        config.kind = "other"


def test_nested_configs_build_their_parts() -> None:
    fusion = encode.make_encoder(
        {"kind": "fusion", "text_encoder": {"kind": "tfidf", "n_components": 8}, "text_weight": 0.25}
    )
    assert isinstance(fusion.text_encoder, encode.TfidfEncoder) and fusion.text_encoder.config.n_components == 8
    assert fusion.config.behaviour == encode.BehaviourConfig()
    cached = encode.make_encoder(encode.CachedConfig(encoder=encode.MultilingualConfig(max_chars=10), directory="/x"))
    assert isinstance(cached.encoder, encode.MultilingualEncoder) and str(cached.cache.directory) == "/x"
    assert encode.TfidfEncoder(16).config == encode.TfidfConfig(n_components=16)  # the main parameter by position
    assert encode.OnnxEncoder(Path("m.onnx")).config.model == "m.onnx"


def test_bad_configs_say_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match=r"'n_components' parameter of TfidfConfig is invalid.*Got 0 instead"):
        encode.make_encoder("tfidf", n_components=0)
    with pytest.raises(ConfigError, match="does not match any of the expected tags"):
        encode.encoder_config({"kind": "bert-large"})
    with pytest.raises(ConfigError, match="either a config or parameters"):
        encode.TfidfEncoder(encode.TfidfConfig(), seed=1)
    with pytest.raises(ConfigError, match="TfidfEncoder needs a TfidfConfig; got a OnnxConfig instead"):
        encode.TfidfEncoder(encode.OnnxConfig())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="MultilingualEncoder takes a MultilingualConfig or keyword parameters"):
        encode.MultilingualEncoder(2)  # type: ignore[arg-type]
