"""encode_query: a typed taste that rules something out points away from it, with the real MiniLM."""

from __future__ import annotations

import numpy as np

from personas.encode import OnnxEncoder, encode_queries, encode_query

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


MIXED = [
    "comedy",
    "romantic comedies, but no horror",
    "anything but horror",
    " ".join(["a long profile of someone who watches westerns, war films and quiet dramas"] * 12),  # ~180 tokens
    "",
    "science fiction",
]


def test_encode_queries_equals_one_call_per_text_dynamic_int8(onnx_int8: OnnxEncoder) -> None:
    batched = encode_queries(onnx_int8, MIXED)
    one_by_one = np.vstack([encode_query(onnx_int8, text) for text in MIXED])
    assert batched.shape == (len(MIXED), onnx_int8.dim)
    np.testing.assert_array_equal(batched, one_by_one)  # each text runs alone: bit for bit


def test_encode_queries_with_padded_batches_matches_within_float_tolerance(onnx_batched: OnnxEncoder) -> None:
    # Texts of 1 to ~180 tokens share padded batches of 4: the attention mask keeps padding out of each vector.
    batched = encode_queries(onnx_batched, MIXED)
    one_by_one = np.vstack([encode_query(onnx_batched, text) for text in MIXED])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
