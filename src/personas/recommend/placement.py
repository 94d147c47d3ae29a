"""GroupPlacer: which group a user belongs to when their own behaviour cannot say.

One rule for the router, the HTTP service and the CLI, in this order: a group label given for the user; the
nearest group centroid of the user's vector; the group whose item rates are most like the user's history;
a similarity-weighted vote of the known users whose side text (own words, demographics) is most like the
user's. Weights sum to 1, or are all 0 when nothing points to a group.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from personas.recommend.side import SideText

__all__ = ["GroupPlacer", "group_of_history"]


def group_of_history(group_scores: np.ndarray, history: sp.csr_matrix) -> int:
    """The group whose item rates (rows of ``group_scores``) are most like this history (cosine); -1 without
    groups or history."""
    if history.nnz == 0 or len(group_scores) == 0:
        return -1
    norms = np.linalg.norm(group_scores, axis=1)
    sims = (history @ group_scores.T).ravel() / np.where(norms > 0, norms, 1.0)
    return int(np.argmax(sims))


class GroupPlacer:
    """Places users in the groups of a fitted group model: ``labels`` (the known users' groups, -1 = none),
    ``group_scores`` (groups x items: each group's item rates), ``has_history`` (which known users took
    anything).

    ``centroids``: group centroids in the space of the users' vectors (as given: the router passes them with
    unit-norm rows), or None;
    ``user_vectors``: the known users' vectors (rows as the model's users), or None; ``side``: the known users'
    side text, or None; ``neighbours``: how many known users vote.
    """

    def __init__(
        self,
        labels: np.ndarray,
        group_scores: np.ndarray,
        has_history: np.ndarray,
        *,
        centroids: np.ndarray | None = None,
        user_vectors: np.ndarray | None = None,
        side: SideText | None = None,
        neighbours: int = 100,
    ) -> None:
        self.labels = labels
        self.group_scores = group_scores
        self.has_history = has_history
        self.centroids = np.zeros((0, 0)) if centroids is None else centroids
        self.user_vectors = np.zeros((0, 0)) if user_vectors is None else user_vectors
        self.side = side
        self.neighbours = neighbours

    @property
    def n_groups(self) -> int:
        return len(self.group_scores)

    def default_voters(self, labels: np.ndarray | None = None) -> np.ndarray:
        """Who may vote: known users with history and a group (under ``labels``, default the fitted ones)."""
        labels = self.labels if labels is None else labels
        return self.has_history & (labels >= 0)

    def one_hot(self, group: int) -> np.ndarray:
        out = np.zeros(self.n_groups)
        if 0 <= group < len(out):
            out[group] = 1.0
        return out

    def reads_vector(self, vector: np.ndarray | None) -> bool:
        """Whether :meth:`weights` and :meth:`place` go by ``vector`` (its nearest centroid), not by side text."""
        return vector is not None and self.centroids.size > 0 and vector.shape == (self.centroids.shape[1],)

    def weights(self, *, side: sp.csr_matrix | None = None, vector: np.ndarray | None = None) -> np.ndarray:
        """How likely someone with no history belongs to each group: the nearest centroid of ``vector``, else
        the side-text vote of ``side`` (a TF-IDF row of :class:`SideText`)."""
        out = np.zeros(self.n_groups)
        if self.n_groups == 0:
            return out
        if self.reads_vector(vector):
            assert vector is not None
            out[int(np.argmax(self.centroids @ vector))] = 1.0
            return out
        return self.vote(side, self.labels, self.default_voters())

    def vote(self, side: sp.csr_matrix | None, labels: np.ndarray, voters: np.ndarray) -> np.ndarray:
        """Similarity-weighted group vote of the ``voters`` nearest to ``side`` (all 0 if none)."""
        if side is None or self.side is None or side.shape[1] != self.side.vectors_.shape[1]:
            return np.zeros(self.n_groups)
        return self.votes(sp.csr_matrix(side), labels, voters)[0]

    def votes(self, sides: sp.csr_matrix, labels: np.ndarray, voters: np.ndarray) -> np.ndarray:
        """:meth:`vote` for many side vectors at once (rows of ``sides``), in chunks to bound memory."""
        out = np.zeros((sides.shape[0], self.n_groups))
        if self.side is None or not voters.any() or sides.nnz == 0:
            return out
        k = min(self.neighbours, int(voters.sum()))
        for start in range(0, sides.shape[0], 256):
            sims = np.asarray((sides[start : start + 256] @ self.side.vectors_.T).todense())
            sims[:, ~voters] = -np.inf
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            weight = np.take_along_axis(sims, top, axis=1)
            weight = np.where(weight > 0, weight, 0.0)  # no shared words: no vote
            for i in range(len(top)):
                votes = np.bincount(labels[top[i]], weights=weight[i], minlength=self.n_groups)
                if votes.sum() > 0:
                    out[start + i] = votes / votes.sum()
        return out

    def known_user_weights(self, rows: np.ndarray, labels: np.ndarray, voters: np.ndarray) -> np.ndarray:
        """Group weights of known users (``rows``) placed as if they had no history: their label under
        ``labels``, else their vector's nearest centroid, else the side-text vote of ``voters``."""
        by_vector = self.user_vectors.size > 0 and self.centroids.size > 0
        by_text = (labels[rows] < 0) if not by_vector else np.zeros(len(rows), dtype=bool)
        out = np.zeros((len(rows), self.n_groups))
        if by_text.any():
            assert self.side is not None
            out[by_text] = self.votes(self.side.vectors_[rows[by_text]], labels, voters)
        for i in np.flatnonzero(~by_text).tolist():
            out[i] = self.known_user_weight(int(rows[i]), labels, voters)
        return out

    def known_user_weight(self, row: int, labels: np.ndarray, voters: np.ndarray) -> np.ndarray:
        """:meth:`known_user_weights` of one known user."""
        if labels[row] >= 0:
            return self.one_hot(int(labels[row]))
        vector = self.user_vectors[row] if self.user_vectors.size else None
        if vector is not None and self.centroids.size:
            return self.weights(vector=vector)
        side = self.side.vectors_[row] if self.side is not None else None
        return self.vote(side, labels, voters)

    def with_side(
        self,
        *,
        centroids: np.ndarray | None = None,
        user_vectors: np.ndarray | None = None,
        side: SideText | None = None,
        neighbours: int | None = None,
    ) -> GroupPlacer:
        """This placer with what else is known about users: group centroids in a vector space, the known
        users' vectors in it, their side text, how many of them vote (None keeps the current value)."""
        return GroupPlacer(
            self.labels,
            self.group_scores,
            self.has_history,
            centroids=self.centroids if centroids is None else centroids,
            user_vectors=self.user_vectors if user_vectors is None else user_vectors,
            side=self.side if side is None else side,
            neighbours=self.neighbours if neighbours is None else neighbours,
        )

    def place(
        self,
        *,
        text: str | None = None,
        vector: np.ndarray | None = None,
        history: sp.csr_matrix | None = None,
    ) -> int:
        """One group for a user never seen: the nearest centroid of ``vector``, else the group of ``history``
        (1 x items), else the side-text vote of ``text``; -1 when nothing points to one."""
        if self.reads_vector(vector):
            assert vector is not None
            return int(np.argmax(self.centroids @ vector))
        if history is not None and history.nnz:
            return group_of_history(self.group_scores, history)
        if not text or self.side is None:
            return -1
        weights = self.vote(self.side.vector(text), self.labels, self.default_voters())
        return int(np.argmax(weights)) if weights.any() else -1
