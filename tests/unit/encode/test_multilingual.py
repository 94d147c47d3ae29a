"""USE multilingual v3: non-English text, Chinese included."""

from __future__ import annotations

import numpy as np

from personas.encode import MultilingualEncoder


def test_chinese_text_is_nearer_its_english_meaning(multilingual: MultilingualEncoder) -> None:
    zh, scifi, cooking = multilingual.encode(["我喜欢科幻电影", "I love sci-fi movies", "I hate cooking"])
    assert zh @ scifi > zh @ cooking + 0.2


def test_multilingual_contract_and_edge_inputs(multilingual: MultilingualEncoder) -> None:
    texts = ["Ich liebe Science-Fiction", None, "", "mot " * 25_000, "Ich liebe Science-Fiction"]
    vectors = multilingual.encode(texts, batch_size=2)
    assert vectors.shape == (5, 512) == (5, multilingual.dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[4])
    np.testing.assert_array_equal(vectors[1], vectors[2])
    np.testing.assert_allclose(multilingual.encode(texts[:1])[0], vectors[0], atol=1e-6)
