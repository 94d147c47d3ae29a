"""Shared, expensive encoder instances: each model is loaded once per test session."""

from __future__ import annotations

import pytest

from personas.encode import MultilingualEncoder, OnnxEncoder, SentenceTransformerEncoder


@pytest.fixture(scope="session")
def onnx_int8() -> OnnxEncoder:
    """all-MiniLM-L6-v2 int8 on onnxruntime (the fast default), one thread (the machine is shared)."""
    encoder = OnnxEncoder(threads=1)
    _ = encoder.dim  # load now, so the first test does not pay for it in its own timing
    return encoder


@pytest.fixture(scope="session")
def sentence_transformer() -> SentenceTransformerEncoder:
    """all-MiniLM-L6-v2 on torch: the reference the fast path is compared with."""
    encoder = SentenceTransformerEncoder(threads=1)
    _ = encoder.dim
    return encoder


@pytest.fixture(scope="session")
def multilingual() -> MultilingualEncoder:
    return MultilingualEncoder(threads=1)
