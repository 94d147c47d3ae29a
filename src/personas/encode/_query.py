"""A typed taste as one vector: what it asks for minus what it rules out (see ``personas.data.query``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from personas.data.query import split_negation
from personas.encode._base import Encoder

__all__ = ["encode_queries", "encode_query"]


def encode_query(encoder: Encoder, text: str) -> np.ndarray:
    """``text`` encoded for matching against item texts: when it rules something out ("comedies, but no
    horror"), the unit vector of what it asks for minus the unit vector of what it avoids, so cosine to an item
    is (up to one scale) its similarity to the wish minus its similarity to what is avoided; "anything but
    horror" alone points away from horror. Text without a negation cue is encoded as it is."""
    return encode_queries(encoder, [text])[0]


def encode_queries(encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
    """:func:`encode_query` of each text (float64, one row per text), with one ``encoder.encode`` call for all
    of them: the rows equal those of one call per text wherever the encoder's vectors do not depend on their
    batch-mates (every encoder here: the dynamic-int8 ONNX model runs each text alone, the others mask padding)."""
    split = [split_negation(text) for text in texts]
    parts: list[str] = []
    spans: list[tuple[int, int]] = []  # each text's rows in ``parts``
    for text, (wanted, avoided) in zip(texts, split, strict=True):
        start = len(parts)
        parts.extend([p for p in (wanted, avoided) if p] if avoided else [text])
        spans.append((start, len(parts)))
    vectors = np.asarray(encoder.encode(parts, show_progress=False), dtype=np.float64)
    out = np.empty((len(texts), vectors.shape[1]), dtype=np.float64)
    for row, ((wanted, avoided), (start, end)) in enumerate(zip(split, spans, strict=True)):
        if not avoided:
            out[row] = vectors[start]
            continue
        block = vectors[start:end]
        units = block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
        query = (units[0] - units[1]) if wanted else -units[0]
        norm = np.linalg.norm(query)
        out[row] = query / norm if norm > 1e-12 else units[0]
    return out
