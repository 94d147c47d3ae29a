"""ALS: implicit-feedback matrix factorisation (Hu, Koren, Volinsky 2008) via the ``implicit`` package."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from personas.config import ComponentConfig
from personas.errors import ConfigError
from personas.recommend._checks import require
from personas.recommend.base import FitInputs, NewUser, Recommender

__all__ = ["ALS", "ALSConfig"]


class ALSConfig(ComponentConfig):
    """Defaults chosen on a validation split of ml-100k (bench/recommend.py quality)."""

    kind: ClassVar[str] = "als"

    factors: int = 32
    regularization: float = 0.05
    alpha: float = 5.0  # confidence of a taken item, as in implicit (1 for the rest)
    iterations: int = 15
    seed: int = 0

    def model_post_init(self, _context: object) -> None:
        require(self.factors >= 1, "ALS", "factors", "an int >= 1", self.factors)
        require(self.regularization >= 0, "ALS", "regularization", "a float >= 0", self.regularization)
        require(self.alpha > 0, "ALS", "alpha", "a float > 0", self.alpha)
        require(self.iterations >= 1, "ALS", "iterations", "an int >= 1", self.iterations)


class ALS(Recommender):
    """Scores ``user_factors_ @ item_factors_.T``; one thread and a fixed seed, so fits are reproducible.

    A new user's factors are solved from their history against the fixed item factors (fold-in).
    """

    Config = ALSConfig
    config: ALSConfig
    part = "warm"

    def _fit(self, inputs: FitInputs) -> None:
        try:
            from implicit.cpu.als import AlternatingLeastSquares
        except ImportError:  # pragma: no cover - depends on the install
            raise ConfigError("ALS needs the 'implicit' package: pip install 'personas[recommend]'.") from None
        from threadpoolctl import threadpool_limits

        cfg = self.config
        # implicit parallelises itself; a BLAS thread pool underneath only slows it down (and it warns).
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=cfg.factors,
                regularization=cfg.regularization,
                alpha=cfg.alpha,
                iterations=cfg.iterations,
                random_state=cfg.seed,
                num_threads=1,
                calculate_training_loss=False,
            )
            model.fit(self.seen_.astype(np.float32), show_progress=False)
        self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        # float64 so that a user's scores do not depend on the batch it came in (float32 GEMM kernels vary).
        return self.user_factors_[user_rows].astype(np.float64) @ self.item_factors_.T.astype(np.float64)

    def fold_in(self, item_rows: np.ndarray) -> np.ndarray:
        """User factors that best explain a set of items, holding item factors fixed (one ALS half-step).

        As in ``implicit``: confidence ``alpha`` on taken items, 1 elsewhere;
        ``(Y'Y + (alpha - 1) Y_u'Y_u + reg I) x = alpha Y_u' 1``.
        """
        y = self.item_factors_.astype(np.float64)
        taken = y[item_rows]
        alpha = self.config.alpha
        a = y.T @ y + (alpha - 1.0) * taken.T @ taken + self.config.regularization * np.eye(y.shape[1])
        b = alpha * taken.sum(axis=0)
        return np.linalg.solve(a, b)

    def _score_new(self, query: NewUser) -> np.ndarray:
        if query.n_history == 0:
            return self.fallback_scores(1)[0]
        return self.item_factors_.astype(np.float64) @ self.fold_in(query.history.indices)

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_factors_ = arrays["user_factors"]
        self.item_factors_ = arrays["item_factors"]
