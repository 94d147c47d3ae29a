"""A typed taste as one vector: what it asks for minus what it rules out (see ``personas.data.query``)."""

from __future__ import annotations

import numpy as np

from personas.data.query import split_negation
from personas.encode._base import Encoder

__all__ = ["encode_query"]


def encode_query(encoder: Encoder, text: str) -> np.ndarray:
    """``text`` encoded for matching against item texts: when it rules something out ("comedies, but no
    horror"), the unit vector of what it asks for minus the unit vector of what it avoids, so cosine to an item
    is (up to one scale) its similarity to the wish minus its similarity to what is avoided; "anything but
    horror" alone points away from horror. Text without a negation cue is encoded as it is."""
    wanted, avoided = split_negation(text)
    if not avoided:
        return np.asarray(encoder.encode([text], show_progress=False), dtype=np.float64)[0]
    parts = [p for p in (wanted, avoided) if p]
    vectors = np.asarray(encoder.encode(parts, show_progress=False), dtype=np.float64)
    units = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    query = (units[0] - units[1]) if wanted else -units[0]
    norm = np.linalg.norm(query)
    return query / norm if norm > 1e-12 else units[0]
