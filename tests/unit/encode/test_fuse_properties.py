"""Properties of personas.encode.fuse: one unit vector per user whose cosines blend the parts' cosines with
the weight ``w``: cos(fused) = w * cos(text) + (1 - w) * cos(behaviour)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from personas.encode import fuse
from personas.errors import ConfigError, DataError

PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)

WEIGHT = st.one_of(st.sampled_from([0.0, 1.0, 0.5]), st.floats(0.0, 1.0))


@st.composite
def parts(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Text and behaviour vectors for the same users, of any (nonzero) length and their own widths."""
    n = draw(st.integers(1, 6))
    values = st.floats(-5, 5, allow_subnormal=False)
    text = draw(hnp.arrays(np.float64, (n, draw(st.integers(1, 5))), elements=values))
    behaviour = draw(hnp.arrays(np.float32, (n, draw(st.integers(1, 4))), elements=values.map(np.float32)))
    for part in (text, behaviour):  # a zero row has no direction (a DataError, tested below): give it one
        part[np.linalg.norm(part, axis=1) < 1e-3, 0] = 1.0
    return text, behaviour


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@given(parts(), WEIGHT)
@PROPERTY
def test_fused_rows_are_unit_float32_and_their_cosines_blend_the_parts(
    vectors: tuple[np.ndarray, np.ndarray], w: float
) -> None:
    text, behaviour = vectors
    fused = fuse(text, behaviour, text_weight=w)
    assert fused.shape == (len(text), text.shape[1] + behaviour.shape[1])
    assert fused.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-5)
    want = w * (_unit(text) @ _unit(text).T) + (1 - w) * (_unit(behaviour) @ _unit(behaviour).T)
    np.testing.assert_allclose(fused.astype(np.float64) @ fused.T, want, atol=1e-5)
    np.testing.assert_array_equal(fuse(text.copy(), behaviour.copy(), text_weight=w), fused)  # deterministic


@given(parts(), st.floats(0.01, 100))
@PROPERTY
def test_weights_1_and_0_keep_one_normalised_part(vectors: tuple[np.ndarray, np.ndarray], scale: float) -> None:
    text, behaviour = vectors
    d = text.shape[1]
    text_only = fuse(text, behaviour, text_weight=1.0)
    np.testing.assert_allclose(text_only[:, :d], _unit(text), atol=1e-6)
    np.testing.assert_array_equal(text_only[:, d:], 0.0)
    behaviour_only = fuse(text, behaviour, text_weight=0.0)
    np.testing.assert_array_equal(behaviour_only[:, :d], 0.0)
    np.testing.assert_allclose(behaviour_only[:, d:], _unit(behaviour), atol=1e-6)
    # only directions count: scaling a part's rows changes nothing
    np.testing.assert_allclose(
        fuse(scale * text, behaviour, text_weight=0.3), fuse(text, behaviour, text_weight=0.3), atol=1e-6
    )


@given(parts(), st.integers(1, 3))
@PROPERTY
def test_a_different_number_of_rows_is_a_data_error(vectors: tuple[np.ndarray, np.ndarray], extra: int) -> None:
    text, behaviour = vectors
    more = np.vstack([behaviour, np.ones((extra, behaviour.shape[1]), dtype=behaviour.dtype)])
    with pytest.raises(DataError, match=rf"{len(text)} text vectors but {len(more)} behaviour vectors"):
        fuse(text, more)
    with pytest.raises(DataError, match="behaviour vectors"):
        fuse(np.vstack([text, np.ones((extra, text.shape[1]))]), behaviour)


@pytest.mark.parametrize("w", [-0.1, 1.5, float("nan")])
def test_a_weight_outside_0_1_is_a_config_error(w: float) -> None:
    with pytest.raises(ConfigError, match=r"The 'text_weight' parameter of fuse must be a float in \[0, 1\]"):
        fuse(np.eye(2), np.eye(2), text_weight=w)


def test_a_zero_or_non_finite_row_is_a_data_error() -> None:
    with pytest.raises(DataError, match="row 1 is all zeros"):
        fuse(np.array([[1.0, 0.0], [0.0, 0.0]]), np.eye(2))
    with pytest.raises(DataError, match="row 0 has NaN"):
        fuse(np.eye(2), np.array([[np.nan, 1.0], [0.0, 1.0]]))
