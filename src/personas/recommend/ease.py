"""EASE (Steck 2019): a closed-form item-item linear model, ``B = I - P / diag(P)`` with ``P = (X'X + lambda I)^-1``."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from personas.config import ComponentConfig
from personas.recommend._checks import require
from personas.recommend.base import FitInputs, NewUser, Recommender

__all__ = ["EASE", "EASEConfig", "ease_weights"]


class EASEConfig(ComponentConfig):
    """``l2``: the ridge penalty lambda (best of 100-800 on a validation split of ml-100k: 200).

    ``dtype``: the precision of the inversion and of the stored weights. float32 inverts ~2-3.5x faster (LAPACK
    sgetrf/sgetri through scipy) and halves memory; its weights differ from float64 by ~1e-7 of their scale.
    """

    kind: ClassVar[str] = "ease"

    l2: float = 200.0
    dtype: Literal["float32", "float64"] = "float32"
    # BLAS threads for the inversion (None = the library's default). With other work on 2 cores, OpenBLAS's
    # spinning threads made a 1,682-item float32 inverse take 5-20 s at 2 threads against 0.9-1.1 s at 1.
    blas_threads: int | None = 1

    def model_post_init(self, _context: object) -> None:
        require(self.l2 > 0, "EASE", "l2", "a float > 0", self.l2)
        require(
            self.blas_threads is None or self.blas_threads >= 1,
            "EASE",
            "blas_threads",
            "None or an int >= 1",
            self.blas_threads,
        )


def ease_weights(gram: np.ndarray, l2: float, dtype: str = "float32", threads: int | None = 1) -> np.ndarray:
    """The EASE weight block (zero diagonal) of a Gram matrix ``X'X``; ``gram`` is left untouched.

    Measured on 2 shared cores, 3,000 items: scipy.linalg.inv in float32 1.8 s, in float64 3.9 s, numpy's inv
    (its bundled OpenBLAS) 6.4 s in either precision; a Cholesky inverse (potrf + potri) was slower still, and an
    eigendecomposition that could be reused across l2 values cost 13x one float32 inverse -- so every l2 gets its
    own LU inverse.
    """
    from threadpoolctl import threadpool_limits

    system = np.array(gram, dtype=dtype, copy=True)
    system[np.diag_indices_from(system)] += l2
    with threadpool_limits(threads, "blas"):
        inverse = scipy.linalg.inv(system, overwrite_a=True, check_finite=False)
    block = inverse / -np.diag(inverse)
    block[np.diag_indices_from(block)] = 0.0
    return block


class EASE(Recommender):
    """Scores ``x_u @ B`` where B (items x items, zero diagonal) is learned in closed form.

    Memory and time grow with the square / cube of the number of items: fine up to ~20,000 items.
    """

    Config = EASEConfig
    config: EASEConfig
    part = "warm"

    def _fit(self, inputs: FitInputs) -> None:
        # Items nobody took have a Gram block of lambda * I: their weights are 0, so only the others are
        # inverted (exactly the same B, and the cube of a smaller n).
        active = np.flatnonzero(self.popularity_ > 0)
        x = self.seen_[:, active]
        gram = (x.T @ x).toarray()
        block = ease_weights(gram, self.config.l2, self.config.dtype, self.config.blas_threads)
        weights = np.zeros((self.n_items_, self.n_items_), dtype=self.config.dtype)
        weights[np.ix_(active, active)] = block
        self.weights_ = weights

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        # Sparse x dense in scipy is a per-row loop (no BLAS), so a user's scores do not depend on the batch.
        return np.asarray(self.seen_[user_rows] @ self.weights_, dtype=np.float64)

    def _score_new(self, query: NewUser) -> np.ndarray:
        if query.n_history == 0:
            return self.fallback_scores(1)[0]
        return np.asarray(query.history @ self.weights_, dtype=np.float64).ravel()

    def _score_histories(self, history: sp.csr_matrix) -> np.ndarray:
        return np.asarray(history @ self.weights_, dtype=np.float64)

    def _because(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        contributions = self.weights_[np.ix_(history, items)]
        best = contributions.argmax(axis=0)
        return np.where(contributions[best, np.arange(len(items))] > 0, history[best], -1)

    def _state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights_ = arrays["weights"]
