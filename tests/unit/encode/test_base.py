"""Input cleaning, normalising and precomputed vectors: the rules every encoder shares."""

from __future__ import annotations

import numpy as np
import pytest

from personas.encode import as_vectors, fuse
from personas.encode._base import clean_texts, unique_texts, unit_rows
from personas.errors import ConfigError, DataError


def test_clean_texts_defines_missing_and_blank_as_empty() -> None:
    assert clean_texts([None, "", "   \n\t", float("nan"), "  hi  ", b"caf\xc3\xa9"], where="t") == [
        "",
        "",
        "",
        "",
        "hi",
        "café",
    ]


def test_clean_texts_rejects_invalid_utf8_bytes_with_position() -> None:
    with pytest.raises(DataError, match=r"text 1 is bytes that are not valid UTF-8.*byte 1"):
        clean_texts(["ok", b"a\xff\xfe"], where="t")


def test_clean_texts_rejects_lone_surrogates() -> None:
    bad = b"caf\xe9".decode("utf-8", errors="surrogateescape")
    with pytest.raises(DataError, match="text 0 holds a character that is not valid Unicode"):
        clean_texts([bad], where="t")


def test_clean_texts_rejects_a_single_string_and_other_types() -> None:
    with pytest.raises(DataError, match="wrap it in a list"):
        clean_texts("one text", where="t")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="text 1 is a int"):
        clean_texts(["a", 3], where="t")  # type: ignore[list-item]


def test_unique_texts_maps_every_input_to_its_first_copy() -> None:
    distinct, inverse = unique_texts(["b", "a", "b", "c", "a"])
    assert distinct == ["b", "a", "c"]
    assert inverse.tolist() == [0, 1, 0, 2, 1]


def test_unit_rows_scales_and_uses_fallback_for_zero_rows() -> None:
    out = unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]]), fallback=np.array([0.0, 1.0]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 1.0]], atol=1e-7)


def test_as_vectors_normalises_precomputed_and_rejects_bad_rows() -> None:
    out = as_vectors(np.array([[2.0, 0.0], [1.0, 1.0]]))
    np.testing.assert_allclose(out, [[1.0, 0.0], [2**-0.5, 2**-0.5]], atol=1e-7)
    with pytest.raises(DataError, match="row 1 is all zeros"):
        as_vectors(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(DataError, match="row 0 has NaN"):
        as_vectors(np.array([[np.nan, 0.0]]))
    with pytest.raises(DataError, match="2-D"):
        as_vectors(np.ones(3))
    with pytest.raises(ConfigError, match="no encoder"):
        as_vectors(["some text"])


def test_fuse_cosine_is_the_weighted_mean_of_the_part_cosines(rng: np.random.Generator) -> None:
    text = unit_rows(rng.normal(size=(5, 7)))
    behaviour = unit_rows(rng.normal(size=(5, 3)))
    fused = fuse(text, behaviour, text_weight=0.3)
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-6)
    expected = 0.3 * (text @ text.T) + 0.7 * (behaviour @ behaviour.T)
    np.testing.assert_allclose(fused @ fused.T, expected, atol=1e-6)
    np.testing.assert_allclose(fuse(text, behaviour, text_weight=1.0)[:, :7], text, atol=1e-7)
    with pytest.raises(ConfigError, match=r"'text_weight' parameter of fuse must be a float in \[0, 1\]"):
        fuse(text, behaviour, text_weight=1.5)
    with pytest.raises(DataError, match="5 text vectors but 4 behaviour vectors"):
        fuse(text, behaviour[:4])
