"""TF-IDF + truncated SVD: the model-free baseline."""

from __future__ import annotations

import numpy as np
import pytest

from personas.encode import Encoder, TfidfEncoder
from personas.errors import ConfigError, DataError, NotFittedError

CORPUS = [
    "space opera with starships and aliens",
    "aliens invade a space station",
    "starships fight in deep space",
    "a romantic comedy about a wedding",
    "love story and a wedding in paris",
    "romantic love in paris",
]


def test_tfidf_separates_two_topics_and_follows_the_contract() -> None:
    encoder = TfidfEncoder(n_components=2, seed=0).fit(CORPUS)
    assert isinstance(encoder, Encoder)
    vectors = encoder.encode(CORPUS)
    assert vectors.shape == (6, 2) == (6, encoder.dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    sims = vectors @ vectors.T
    within = min(sims[i, j] for block in ([0, 1, 2], [3, 4, 5]) for i in block for j in block)
    across = max(sims[i, j] for i in (0, 1, 2) for j in (3, 4, 5))
    assert within > across


def test_tfidf_is_deterministic_and_batch_independent() -> None:
    first = TfidfEncoder(n_components=3, seed=0).fit(CORPUS)
    second = TfidfEncoder(n_components=3, seed=0).fit(CORPUS)
    assert first.name == second.name
    np.testing.assert_array_equal(first.encode(CORPUS), second.encode(CORPUS))
    np.testing.assert_allclose(first.encode(CORPUS, batch_size=1), first.encode(CORPUS), atol=1e-6)
    assert first.name != TfidfEncoder(n_components=3, seed=0).fit(CORPUS[:5]).name  # fitted state is identity


def test_tfidf_texts_without_known_words_get_the_corpus_direction() -> None:
    encoder = TfidfEncoder(n_components=2).fit(CORPUS)
    vectors = encoder.encode([None, "", "   ", "zzz qqq", "x" * 100_000])
    for row in vectors:
        np.testing.assert_allclose(row, encoder.empty_vector_, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_tfidf_errors_say_what_to_do() -> None:
    with pytest.raises(NotFittedError, match=r"Call fit\(texts\)"):
        TfidfEncoder().encode(["x"])
    with pytest.raises(DataError, match="at least 2 non-empty texts"):
        TfidfEncoder().fit(["only one", "", None])
    with pytest.raises(ConfigError, match=r"'n_components' parameter of TfidfConfig is invalid.*Got 0 instead"):
        TfidfEncoder(n_components=0).fit(CORPUS)
    with pytest.warns(UserWarning, match="n_components=256 reduced to 5"):
        TfidfEncoder().fit(CORPUS)
