"""The contract every text encoder keeps (one suite, run against every encoder that runs here).

The rules for awkward input are the same for all encoders (see personas.encode):
- ``None``, ``""`` and whitespace-only texts are "no text": they all get the encoder's one empty-text vector
  (a unit vector: the model's vector of an empty input, or the fitted corpus' mean direction);
- a 100,000-character text gets a unit vector (models truncate it to their own length limit);
- bytes are decoded as UTF-8; undecodable bytes, lone surrogates and non-text items raise DataError saying which
  text and how to fix it; a float array raises DataError pointing to ``as_vectors`` (precomputed vectors).

Each model is loaded once (session fixtures in tests/conftest.py); this suite adds only the encoding it does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personas.data import Dataset
from personas.encode import (
    BehaviourEncoder,
    CachedEncoder,
    EmbeddingCache,
    Encoder,
    FusionEncoder,
    MultilingualEncoder,
    OnnxEncoder,
    SentenceTransformerEncoder,
    TfidfEncoder,
    as_vectors,
    encoder_config,
    make_encoder,
)
from personas.errors import DataError

TEXTS = [
    "a 24-year-old male technician. liked: Star Wars (1977) [Action Adventure Sci-Fi]; Alien (1979) [Horror Sci-Fi]",
    "a 53-year-old female writer. liked: Casablanca (1942) [Drama Romance War]; Amelie (2001) [Comedy Romance]",
    "I love sci-fi movies",
    "This drug helped with my migraines, but I felt dizzy for the first week.",
    "short",
]
CORPUS = [*TEXTS, "space aliens and starships", "a wedding in paris", "romance and drama films", "sci-fi war movies"]

ENCODERS = ["onnx_int8", "onnx_batched", "sentence_transformer", "tfidf", "multilingual", "cached"]


@pytest.fixture(scope="module")
def tfidf() -> TfidfEncoder:
    return TfidfEncoder(n_components=4, min_df=1).fit(CORPUS)


@pytest.fixture(scope="module")
def cached(onnx_int8: OnnxEncoder, tmp_path_factory: pytest.TempPathFactory) -> CachedEncoder:
    return CachedEncoder(onnx_int8, EmbeddingCache(tmp_path_factory.mktemp("contract-cache")))


@pytest.fixture(params=ENCODERS)
def encoder(request: pytest.FixtureRequest) -> Encoder:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def test_vectors_are_unit_float32_rows_and_deterministic(encoder: Encoder) -> None:
    assert isinstance(encoder, Encoder)
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), encoder.dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(encoder.encode(TEXTS), vectors)
    empty = encoder.encode([])
    assert empty.shape == (0, encoder.dim) and empty.dtype == np.float32


def test_a_texts_vector_does_not_depend_on_its_batch(encoder: Encoder) -> None:
    alone = np.vstack([encoder.encode([t], batch_size=1) for t in TEXTS])
    together = encoder.encode(TEXTS, batch_size=3)  # mixed lengths in one batch
    shuffled = encoder.encode(TEXTS[::-1] + TEXTS, batch_size=64)
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(shuffled[len(TEXTS) :], alone, atol=1e-5)
    np.testing.assert_allclose(shuffled[: len(TEXTS)], alone[::-1], atol=1e-5)
    same = encoder.encode(["same text", "other", "same text", "  same text  "])
    np.testing.assert_array_equal(same[0], same[2])
    np.testing.assert_array_equal(same[0], same[3])  # surrounding whitespace is not meaning


def test_missing_blank_and_huge_texts_get_defined_unit_vectors(encoder: Encoder) -> None:
    huge = "word " * 20_000  # 100,000 characters
    vectors = encoder.encode([None, "", "   \t\n", huge, "café".encode()])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[1])  # one empty-text vector for all three
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_allclose(vectors[4], encoder.encode(["café"])[0], atol=1e-6)  # bytes are UTF-8 text


def test_undecodable_and_non_text_input_raise_clear_errors(encoder: Encoder) -> None:
    with pytest.raises(DataError, match=r"text 1 is bytes that are not valid UTF-8.*Decode it first"):
        encoder.encode(["fine", b"\xff\xfe broken"])
    with pytest.raises(DataError, match="text 0 holds a character that is not valid Unicode"):
        encoder.encode([b"caf\xe9".decode("utf-8", errors="surrogateescape")])
    with pytest.raises(DataError, match="text 1 is a int"):
        encoder.encode(["a", 3])  # type: ignore[list-item]
    with pytest.raises(DataError, match="wrap it in a list"):
        encoder.encode("one text")  # type: ignore[arg-type]


def test_precomputed_vectors_are_accepted_where_texts_are(encoder: Encoder) -> None:
    vectors = encoder.encode(TEXTS[:2])
    scaled = 3.0 * vectors.astype(np.float64)
    np.testing.assert_allclose(as_vectors(scaled, encoder), vectors, atol=1e-6)  # normalised, not re-encoded
    np.testing.assert_allclose(as_vectors(TEXTS[:2], encoder), vectors, atol=1e-6)
    with pytest.raises(DataError, match=r"pass precomputed vectors to personas\.encode\.as_vectors"):
        encoder.encode(scaled)  # type: ignore[arg-type]


def test_identity_is_stable_and_the_config_round_trips_through_json(encoder: Encoder) -> None:
    name = encoder.name
    assert isinstance(name, str) and name
    encoder.encode(TEXTS[:1])
    assert encoder.name == name  # encoding does not change who the encoder is
    config = encoder.config  # type: ignore[attr-defined]
    again = encoder_config(config.model_dump_json())
    assert again == config and type(again) is type(config)
    rebuilt = make_encoder(again)
    assert type(rebuilt) is type(encoder)
    if isinstance(rebuilt, TfidfEncoder):
        rebuilt.fit(CORPUS)  # the fitted vocabulary is part of a TF-IDF encoder's identity
    assert rebuilt.name == name


def test_cache_hit_skips_the_model(onnx_int8: OnnxEncoder, tmp_path: Path) -> None:
    model = OnnxEncoder(threads=1)  # its own counter
    first = CachedEncoder(model, EmbeddingCache(tmp_path)).encode([*TEXTS, TEXTS[0]])
    assert model.texts_encoded == len(TEXTS)  # the duplicate ran once
    again = CachedEncoder(model, EmbeddingCache(tmp_path))  # a fresh cache object reads the folder
    np.testing.assert_array_equal(again.encode(TEXTS[::-1]), first[: len(TEXTS)][::-1])
    assert model.texts_encoded == len(TEXTS)  # the model was not called again
    assert (again.last_hits, again.last_misses) == (len(TEXTS), 0)
    again.encode(["one new text", TEXTS[0]])
    assert model.texts_encoded == len(TEXTS) + 1


def test_every_model_encoder_counts_the_texts_it_runs(
    sentence_transformer: SentenceTransformerEncoder, multilingual: MultilingualEncoder
) -> None:
    for model in (sentence_transformer, multilingual):
        before = model.texts_encoded
        model.encode(["counted once", "counted once", "and me"])
        assert model.texts_encoded == before + 2


def test_behaviour_and_fusion_keep_the_contract(tiny: Dataset) -> None:
    fits = [
        (BehaviourEncoder(n_components=2, value="binary").fit(tiny), None),
        (  # an unfitted TF-IDF part is fitted on the users' texts, as a config-built one is
            FusionEncoder(TfidfEncoder(3, min_df=1), BehaviourEncoder(n_components=2), text_weight=0.3).fit(
                tiny, texts=tiny.user_texts()
            ),
            tiny.user_texts(),
        ),
    ]
    for fitted, texts in fits:
        vectors = fitted.vectors_
        assert vectors.shape == (tiny.n_users, fitted.dim) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        config = encoder_config(fitted.config.model_dump_json())
        assert config == fitted.config
        rebuilt = make_encoder(config)
        rebuilt.fit(tiny) if texts is None else rebuilt.fit(tiny, texts=texts)
        np.testing.assert_array_equal(rebuilt.vectors_, vectors)  # same config, same data: same vectors
        assert rebuilt.name == fitted.name
    behaviour, fusion = (fitted for fitted, _ in fits)
    no_history = behaviour.encode_histories([[]])
    np.testing.assert_allclose(no_history[0], behaviour.empty_vector_, atol=1e-6)
    new = fusion.encode_new([None, "", "sci-fi war movies"], [[], [], ["a"]])
    assert new.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(new, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(new[0], new[1])
