"""l2_rows: sklearn's normalize (rows, L2) without its checks, the same numbers bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from personas.recommend._rows import derived, diagonal, l2_rows
from personas.recommend.base import history_row


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


def _coordinate_row(item_rows: np.ndarray, n_items: int) -> sp.csr_matrix:
    """history_row as it was built before its fast path: from coordinates (sorted, duplicates summed)."""
    return sp.csr_matrix((np.ones(len(item_rows)), (np.zeros(len(item_rows), dtype=np.int64), item_rows)), (1, n_items))


@pytest.mark.parametrize("rows", [[], [0], [3], [1, 5, 9], list(range(0, 40, 3)), [39], [9, 1, 5], [2, 2, 7]])
def test_history_rows_are_the_coordinate_form_array_for_array(rows: list[int]) -> None:
    """Sorted distinct rows take the fast path, others the coordinate form: the same matrix either way (data,
    index order and dtypes: later products sum in that order)."""
    item_rows = np.array(rows, dtype=np.int64)
    got, expected = history_row(item_rows, 40), _coordinate_row(item_rows, 40)
    assert got.shape == expected.shape == (1, 40)
    for name in ("data", "indices", "indptr"):
        a, b = getattr(got, name), getattr(expected, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name


def test_derived_operands_are_built_once_per_source_array() -> None:
    class Model:
        pass

    model, built = Model(), []
    source = np.array([1.0, 2.0])

    def build() -> sp.csr_matrix:
        built.append(1)
        return diagonal(source)

    first = derived(model, "idf", source, build)
    assert derived(model, "idf", source, build) is first and len(built) == 1
    np.testing.assert_array_equal(first.toarray(), sp.diags(source).toarray())
    source = np.array([3.0, 4.0])  # a refit or a load replaces the array: built again from the new one
    np.testing.assert_array_equal(derived(model, "idf", source, build).toarray(), np.diag([3.0, 4.0]))
    assert len(built) == 2
