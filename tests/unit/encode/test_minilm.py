"""all-MiniLM-L6-v2 on the fast path (int8 ONNX) and on sentence-transformers (the reference)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from personas.encode import Encoder, OnnxEncoder, SentenceTransformerEncoder
from personas.encode._onnx import fast_minilm
from personas.errors import ConfigError, DataError

TEXTS = [
    "a 24-year-old male technician. liked: Star Wars (1977) [Action Adventure Sci-Fi]; Alien (1979) [Horror Sci-Fi]",
    "a 53-year-old female writer. liked: Casablanca (1942) [Drama Romance War]; Amelie (2001) [Comedy Romance]",
    "I love sci-fi movies",
    "This drug helped with my migraines, but I felt dizzy for the first week.",
    "short",
]


@pytest.fixture(params=["onnx_int8", "onnx_batched", "sentence_transformer"])
def minilm(request: pytest.FixtureRequest) -> Encoder:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def test_minilm_follows_the_encoder_contract(minilm: Encoder) -> None:
    assert isinstance(minilm, Encoder)
    vectors = minilm.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) == (len(TEXTS), minilm.dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(minilm.encode(TEXTS), vectors)  # deterministic
    assert minilm.encode([]).shape == (0, 384)


def test_minilm_vector_of_a_text_does_not_depend_on_its_batch(minilm: Encoder) -> None:
    alone = np.vstack([minilm.encode([t], batch_size=1) for t in TEXTS])
    together = minilm.encode(TEXTS, batch_size=3)  # mixed lengths padded in one batch
    shuffled = minilm.encode(TEXTS[::-1] + TEXTS, batch_size=64)
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(shuffled[len(TEXTS) :], alone, atol=1e-5)
    np.testing.assert_allclose(shuffled[: len(TEXTS)], alone[::-1], atol=1e-5)


def test_minilm_identical_texts_get_identical_vectors(minilm: Encoder) -> None:
    vectors = minilm.encode(["same text", "other", "same text", "  same text  "])
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_array_equal(vectors[0], vectors[3])  # surrounding whitespace is not meaning


def test_minilm_edge_inputs_get_defined_vectors(minilm: Encoder) -> None:
    long_text = "word " * 20_000  # 100,000 characters: truncated to the model's 256 tokens
    vectors = minilm.encode([None, "", "   \t\n", long_text, b"bytes are fine"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[1])  # None, empty, blank: the same empty-text vector
    np.testing.assert_array_equal(vectors[0], vectors[2])
    truncated = minilm.encode(["word " * 300])  # already past 256 tokens: same truncated input
    np.testing.assert_allclose(vectors[3], truncated[0], atol=1e-5)
    with pytest.raises(DataError, match="not valid UTF-8"):
        minilm.encode(["fine", b"\xff\xfe broken"])


def test_minilm_meaning_orders_neighbours(minilm: Encoder) -> None:
    a, b, c = minilm.encode(["I love science fiction films", "sci-fi movies are my favourite", "I hate cooking"])
    assert a @ b > a @ c + 0.2


def test_int8_fast_path_matches_sentence_transformers(
    onnx_int8: OnnxEncoder, onnx_batched: OnnxEncoder, sentence_transformer: SentenceTransformerEncoder
) -> None:
    reference = sentence_transformer.encode(TEXTS)
    cosine = (onnx_int8.encode(TEXTS) * reference).sum(axis=1)
    assert cosine.min() > 0.98, cosine
    assert cosine.mean() > 0.99, cosine
    stored = (onnx_batched.encode(TEXTS) * reference).sum(axis=1)
    assert stored.min() > 0.998, stored


def test_fast_path_model_multiplies_in_int8(onnx_int8: OnnxEncoder) -> None:
    import onnx

    model = onnx.load(str(fast_minilm()))
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("MatMulInteger") == 30  # 6 layers x (q, k, v, attention out, ffn in)
    assert ops.count("MatMul") == 18  # attention products and the ffn down-projections stay fp32
    assert {p.key: p.value for p in model.metadata_props}["personas.quantization"] == "dynamic-int8"


def test_encoder_names_identify_model_and_settings(onnx_int8: OnnxEncoder) -> None:
    assert onnx_int8.name == OnnxEncoder(threads=2).name  # threads do not change the vectors
    assert onnx_int8.name != OnnxEncoder(max_length=64).name
    assert "len256" in onnx_int8.name


def test_bad_parameters_raise_config_errors(onnx_int8: OnnxEncoder) -> None:
    with pytest.raises(ConfigError, match=r"'batch_size' parameter of OnnxEncoder.encode must be an int >= 1"):
        onnx_int8.encode(["x"], batch_size=0)
    with pytest.raises(ConfigError, match="'max_length' parameter of OnnxEncoder must be an int >= 2"):
        OnnxEncoder(max_length=1).encode(["x"])
    with pytest.raises(ConfigError, match=r"not-a-model-package.*neither an existing path nor an installed"):
        OnnxEncoder("not-a-model-package").encode(["x"])
    with pytest.raises(ConfigError, match="'threads' parameter of OnnxEncoder must be an int >= 1"):
        OnnxEncoder(threads=0).encode(["x"])


def test_cuda_request_falls_back_to_cpu_with_a_warning() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present here; the fallback is for machines without one")
    encoder = SentenceTransformerEncoder(device="cuda", threads=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vector = encoder.encode(["hello"])
    assert any("no CUDA GPU is usable here" in str(w.message) for w in caught)
    assert vector.shape == (1, 384)


def test_worker_threads_do_not_change_vectors(onnx_int8: OnnxEncoder) -> None:
    texts = [f"text number {i} " * (i % 7 + 1) for i in range(12)]
    np.testing.assert_array_equal(OnnxEncoder(threads=2).encode(texts), onnx_int8.encode(texts))
