"""encode_query: a typed taste that rules something out points away from it, with the real MiniLM."""

from __future__ import annotations

import numpy as np

from personas.encode import OnnxEncoder, encode_query

FILMS = [
    "Halloween (1978) Horror",
    "The Texas Chainsaw Massacre (1974) Horror",
    "Sleepless in Seattle (1993) Comedy Romance",
    "When Harry Met Sally (1989) Comedy Romance",
]


def test_a_negated_taste_ranks_what_it_rules_out_last(onnx_int8: OnnxEncoder) -> None:
    films = onnx_int8.encode(FILMS)
    plain = films @ onnx_int8.encode(["anything but horror"])[0]
    negated = films @ encode_query(onnx_int8, "anything but horror")
    assert plain[:2].min() > plain[2:].max()  # the words alone are about horror
    assert negated[:2].max() < negated[2:].min()  # the query points away from it
    both = films @ encode_query(onnx_int8, "romantic comedies, but no horror")
    assert both[2:].min() > both[:2].max()


def test_a_taste_without_negation_is_encoded_as_it_is(onnx_int8: OnnxEncoder) -> None:
    text = "romantic comedies"
    assert np.allclose(encode_query(onnx_int8, text), onnx_int8.encode([text])[0])
    assert np.isclose(np.linalg.norm(encode_query(onnx_int8, "anything but horror")), 1.0)
