"""l2_rows: sklearn's normalize (rows, L2) without its checks, the same numbers bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from personas.recommend._rows import l2_rows


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_dense_rows_equal_sklearn_normalize_zero_rows_included(dtype: type) -> None:
    x = (np.random.default_rng(0).normal(size=(20, 7)) * 10).astype(dtype)
    x[3] = 0
    got, expected = l2_rows(x), normalize(x)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    assert np.all(x[3] == 0)  # the input is not changed


def test_sparse_rows_equal_sklearn_normalize_and_come_back_as_csr() -> None:
    x = sp.random(30, 50, density=0.1, random_state=1, format="coo")
    got, expected = l2_rows(x), normalize(x)
    assert got.format == "csr"
    np.testing.assert_array_equal(got.toarray(), expected.toarray())
    np.testing.assert_array_equal(l2_rows(sp.csr_matrix([[3.0, 4.0], [0.0, 0.0]])).toarray(), [[0.6, 0.8], [0, 0]])
