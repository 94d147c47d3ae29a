"""Row normalisation for the per-request path: sklearn's ``normalize`` without its input checks.

``sklearn.preprocessing.normalize`` validates its parameters and its input on every call (~0.1 ms each, several
times per new user's recommendations); these inputs come from the model itself, so the checks only cost time.
"""

from __future__ import annotations

from typing import Any, overload

import numpy as np
import scipy.sparse as sp
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

__all__ = ["l2_rows"]


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
