"""Helpers of the per-request path: sklearn's ``normalize`` without its input checks, and constant operands of
sparse products built once.

``sklearn.preprocessing.normalize`` validates its parameters and its input on every call (~0.1 ms each, several
times per new user's recommendations); these inputs come from the model itself, so the checks only cost time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar, overload

import numpy as np
import scipy.sparse as sp
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

__all__ = ["LastCall", "derived", "diagonal", "forget_last_calls", "l2_rows", "last_call", "read_only"]

T = TypeVar("T")


@overload
def l2_rows(x: np.ndarray) -> np.ndarray: ...
@overload
def l2_rows(x: sp.spmatrix) -> sp.csr_matrix: ...
def l2_rows(x: Any) -> Any:
    """``sklearn.preprocessing.normalize(x)`` (each row to unit L2 norm, zero rows kept), the same numbers bit
    for bit, on a copy: a dense array stays dense (float32 or float64, other types become float64), a sparse
    matrix becomes CSR."""
    if sp.issparse(x):
        out = x.tocsr(copy=True)
        if out.dtype not in (np.float32, np.float64):
            out = out.astype(np.float64)
        inplace_csr_row_normalize_l2(out)
        return out
    dense = np.asarray(x)
    out = np.array(dense, dtype=dense.dtype if dense.dtype in (np.float32, np.float64) else np.float64, copy=True)
    norms = np.sqrt(np.einsum("ij,ij->i", out, out))
    norms[norms < 10 * np.finfo(norms.dtype).eps] = 1.0  # sklearn's rule for (near) zero rows
    out /= norms[:, None]
    return out


def derived(owner: object, name: str, source: Any, build: Callable[[], T]) -> T:
    """``build()``, kept on ``owner`` while ``source`` (the fitted array it is made from) is the same object: a
    constant operand of a per-request product (a transposed or diagonal matrix) is made once, not per call. Not
    state: a model whose array is replaced (loaded, refitted) builds it again; a race only builds it twice."""
    key = f"_derived_{name}"
    kept = owner.__dict__.get(key)
    if kept is not None and kept[0] is source:
        return kept[1]
    value = build()
    owner.__dict__[key] = (source, value)
    return value


def diagonal(values: np.ndarray) -> sp.csr_matrix:
    """``scipy.sparse.diags(values)`` in the CSR form a product with a CSR matrix converts it to (the same
    product, the same numbers)."""
    return sp.csr_matrix(sp.diags(values).tocsr())


class LastCall(threading.local):
    """Per thread, the key and result of the last call of one computation: recommending and then explaining
    the same new user asks for it twice with the same input."""

    key: Any = None
    value: Any = None
    source: Any = (None, None)  # the fitted arrays the value was computed from (compared by identity)


def last_call(owner: object, name: str) -> LastCall:
    """``owner``'s :class:`LastCall` memo called ``name`` (made on first use: loaded models skip ``__init__``;
    a race only costs a recomputation)."""
    key = f"_last_{name}"
    memo = owner.__dict__.get(key)
    if memo is None:
        memo = owner.__dict__[key] = LastCall()
    return memo


def forget_last_calls(owner: object) -> None:
    """Drop every :func:`last_call` memo of ``owner``: they belong to the fit they were computed with (a model
    fitted again must not answer its last new user from the previous fit)."""
    for key in [k for k in owner.__dict__ if k.startswith("_last_")]:
        del owner.__dict__[key]


def read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view: a kept result is shared by later calls, so nobody may change it in place."""
    view = np.asarray(array).view()
    view.flags.writeable = False
    return view
