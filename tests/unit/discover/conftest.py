"""Synthetic unit vectors with known groups, shared by the discover tests."""

from __future__ import annotations

import numpy as np
import pytest


def blobs(
    n_per: int = 40, k: int = 4, dim: int = 16, noise: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``k`` groups around orthogonal directions: any sane method must recover them exactly."""
    rng = np.random.default_rng(seed)
    centers = np.eye(dim, dtype=np.float32)[:k]
    x = np.repeat(centers, n_per, axis=0) + noise * rng.normal(size=(n_per * k, dim)).astype(np.float32)
    truth = np.repeat(np.arange(k), n_per)
    order = rng.permutation(len(x))  # no method may rely on row order
    return x[order], truth[order]


@pytest.fixture(scope="session")
def four_blobs() -> tuple[np.ndarray, np.ndarray]:
    return blobs()


@pytest.fixture(scope="session")
def near_pair_and_far() -> tuple[np.ndarray, np.ndarray]:
    """Three tight groups: A and B at cosine distance ~0.13 (about 30 degrees apart), C orthogonal to both."""
    rng = np.random.default_rng(1)
    a = np.array([1.0, 0.0, 0.0, 0.0])
    b = np.array([np.cos(0.52), np.sin(0.52), 0.0, 0.0])
    c = np.array([0.0, 0.0, 1.0, 0.0])
    x = np.vstack([np.tile(v, (20, 1)) for v in (a, b, c)]) + 0.01 * rng.normal(size=(60, 4))
    return x.astype(np.float32), np.repeat(np.arange(3), 20)
