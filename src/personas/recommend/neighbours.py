"""ItemKNN: item-item cosine similarity on the binary user x item matrix, top-k neighbours kept (sparse)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from personas.config import ComponentConfig
from personas.recommend._checks import require
from personas.recommend.base import FitInputs, NewUser, Recommender

__all__ = ["ItemKNN", "ItemKNNConfig", "similarity_vote", "top_k_per_row"]


class ItemKNNConfig(ComponentConfig):
    """``k``: neighbours kept per item (best of 20-200 on a validation split of ml-100k: 200); ``shrink``:
    damps similarities built from few co-occurrences."""

    kind: ClassVar[str] = "item_knn"

    k: int = 200
    shrink: float = 0.0

    def model_post_init(self, _context: object) -> None:
        require(self.k >= 1, "ItemKNN", "k", "an int >= 1", self.k)
        require(self.shrink >= 0, "ItemKNN", "shrink", "a float >= 0", self.shrink)


def top_k_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row (ties: lower column first, so the result is deterministic)."""
    matrix = matrix.tocsr()
    matrix.sort_indices()
    keep = np.zeros(matrix.nnz, dtype=bool)
    for row in range(matrix.shape[0]):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        if end - start <= k:
            keep[start:end] = True
        else:
            order = np.argsort(-matrix.data[start:end], kind="stable")[:k]
            keep[start + order] = True
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    out = sp.csr_matrix((matrix.data[keep], (rows[keep], matrix.indices[keep])), shape=matrix.shape)
    out.sort_indices()
    return out


class ItemKNN(Recommender):
    """Score of item i for a user: the sum of similarities between i and the items the user took.

    ``similarity_[j, i]`` is the cosine between items j and i, keeping only the k nearest i of every j.
    """

    Config = ItemKNNConfig
    config: ItemKNNConfig
    part = "item_knn"

    def _fit(self, inputs: FitInputs) -> None:
        x = self.seen_.tocsc()
        counts = np.asarray(x.sum(axis=0)).ravel()
        co = (x.T @ x).tocsr().astype(np.float64)  # co-occurrence counts
        co.setdiag(0.0)
        co.eliminate_zeros()
        norms = np.sqrt(np.maximum(counts, 1.0))
        rows = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr))
        co.data = co.data / (norms[rows] * norms[co.indices] + self.config.shrink)
        self.similarity_ = top_k_per_row(co, self.config.k)

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return np.asarray((self.seen_[user_rows] @ self.similarity_).todense())

    def _score_new(self, query: NewUser) -> np.ndarray:
        if query.n_history == 0:
            return self.fallback_scores(1)[0]
        return np.asarray((query.history @ self.similarity_).todense()).ravel()

    def _score_histories(self, history: sp.csr_matrix) -> np.ndarray:
        return np.asarray((history @ self.similarity_).todense())

    def _because(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        # similarity_[j, i]: history item j -> recommended item i; the strongest j explains i.
        block = self.similarity_[history][:, items].toarray()
        best = block.argmax(axis=0)
        return np.where(block[best, np.arange(len(items))] > 0, history[best], -1)

    def because_of(self, history_rows: np.ndarray, item_row: int) -> int:
        """The history item that contributes most to ``item_row`` (for explanations); -1 if none."""
        history_rows = np.asarray(history_rows, dtype=np.int64)
        if history_rows.size == 0:
            return -1
        sims = np.asarray(self.similarity_[history_rows, item_row].todense()).ravel()
        return int(history_rows[np.argmax(sims)]) if sims.max() > 0 else -1

    def _state(self) -> dict[str, np.ndarray]:
        s = self.similarity_
        return {"sim_data": s.data, "sim_indices": s.indices, "sim_indptr": s.indptr}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        n = self.n_items_
        self.similarity_ = sp.csr_matrix(
            (arrays["sim_data"], arrays["sim_indices"], arrays["sim_indptr"]), shape=(n, n)
        )


def similarity_vote(sims: np.ndarray, voter_rows: np.ndarray, seen: sp.csr_matrix, k: int) -> np.ndarray:
    """User-kNN votes: for each row of ``sims`` (similarities to the voters, one column per ``voter_rows``
    entry), the items ``seen`` by its ``k`` most similar voters, weighted by the (positive) similarity; zero
    rows where no voter is similar."""
    out = np.zeros((sims.shape[0], seen.shape[1]))
    k = min(k, sims.shape[1])
    if not k or not len(sims):
        return out
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    for i in range(len(top)):
        weights = np.clip(sims[i, top[i]], 0.0, None)
        if weights.any():
            out[i] = np.asarray(weights @ seen[voter_rows[top[i]]]).ravel()
    return out
