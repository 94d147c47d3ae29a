"""TextMatch: items by what a user's words mean, in the language-model space where the items' own texts live.

The pipeline encodes each item's text (title, year, genres, tags, description) with the same encoder as the
users' texts, and passes those vectors as ``item_text_vectors``; a user's text vector (typed words, a profile)
then scores every item by cosine. Cosine alone ranks obscure items that happen to share a word as high as
well-loved ones, so a popularity prior is added: ``z(cosine) + prior_ * z(log(1 + popularity))``, with
``prior_`` chosen inside ``fit`` on training users whose first items' texts stand in for their words and whose
later items are the truth: the best NDCG@10 among the priors whose top-10 lists for different users share at
most ``max_overlap`` (mean Jaccard). NDCG@10 alone always asks for more popularity on MovieLens-like data
(popular items are most of anyone's later items), until every user gets nearly the same list whatever they
wrote; the overlap bound is the product's promise that different words give different lists.
"""

from __future__ import annotations

import re
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from personas.config import ComponentConfig
from personas.data import item_documents, split_negation
from personas.errors import DataError
from personas.holdout import best_distinct, first_n_split, list_overlap, ndcg_of_scores
from personas.recommend._checks import require
from personas.recommend._rows import l2_rows, last_call, read_only
from personas.recommend.base import FitInputs, NewUser, Recommender, normalise_rows

__all__ = ["TextMatch", "TextMatchConfig"]

_WORD = re.compile(r"[a-z][a-z'-]{2,}")


class TextMatchConfig(ComponentConfig):
    """``priors``: candidate weights of the popularity prior (the first is kept when there are too few users
    to choose); ``shown``: how many of a validation user's first items stand in for their words;
    ``validation_users``: at most this many users choose the prior; ``max_overlap``: the most that two
    validation users' top-10 lists may share on average (Jaccard) for a prior to be chosen (1.0: NDCG@10
    alone decides)."""

    kind: ClassVar[str] = "text_match"
    priors: tuple[float, ...] = (0.5, 0.0, 0.1, 0.25, 1.0, 2.0)
    shown: int = 3
    validation_users: int = 1000
    max_overlap: float = 0.10
    seed: int = 0

    def model_post_init(self, _context: object) -> None:
        require(
            bool(self.priors) and all(p >= 0 for p in self.priors),
            "TextMatch",
            "priors",
            "a non-empty tuple of floats >= 0",
            self.priors,
        )
        require(self.shown >= 1, "TextMatch", "shown", "an int >= 1", self.shown)
        require(self.validation_users >= 10, "TextMatch", "validation_users", "an int >= 10", self.validation_users)
        require(0.0 <= self.max_overlap <= 1.0, "TextMatch", "max_overlap", "a float in [0, 1]", self.max_overlap)


def mean_item_vectors(item_vectors: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
    """Unit mean of the item vectors of each history row (zero rows for empty histories)."""
    return l2_rows(np.asarray(sp.csr_matrix(history) @ item_vectors))


class TextMatch(Recommender):
    """Cosine of a user's text vector to every item's text vector plus a popularity prior (see the module
    docstring). Needs ``item_text_vectors`` at fit; ``user_vectors`` (the known users' text vectors, same
    space) score known users. New users come as ``vector=`` (their words, encoded by the run's encoder) or as
    a history (the mean of their items' text vectors)."""

    Config = TextMatchConfig
    config: TextMatchConfig

    def _fit(self, inputs: FitInputs) -> None:
        if inputs.item_text_vectors is None:
            raise DataError(
                "TextMatch.fit: needs item_text_vectors (one vector per item, from the same text encoder as the "
                "users' texts); the pipeline makes them, or pass them to fit(item_text_vectors=...)."
            )
        self.item_vectors_ = l2_rows(inputs.item_text_vectors)
        dim = self.item_vectors_.shape[1]
        vectors = inputs.user_vectors
        self.user_vectors_ = l2_rows(vectors) if vectors is not None and vectors.shape[1] == dim else np.zeros((0, dim))
        self.log_popularity_ = normalise_rows(np.log1p(self.popularity_).reshape(1, -1))[0]
        self.prior_, self.prior_trials_ = self._choose_prior(inputs)
        self.documents_ = np.asarray(item_documents(inputs.dataset), dtype=str)  # for the words of a reason

    def _choose_prior(self, inputs: FitInputs) -> tuple[float, np.ndarray]:
        """The prior with the best NDCG@10 on users whose first ``shown`` items' texts are their words, among
        those whose lists overlap by at most ``max_overlap``; with the (3, candidates) trials: prior, NDCG@10,
        overlap."""
        cfg = self.config
        counts = np.diff(self.seen_.indptr)
        users = np.flatnonzero(counts >= cfg.shown + 5)
        if len(users) < 10:
            return cfg.priors[0], np.zeros((3, 0))
        if len(users) > cfg.validation_users:
            rng = np.random.default_rng(cfg.seed)
            users = np.sort(rng.choice(users, cfg.validation_users, replace=False))
        shown, truth = first_n_split(inputs.dataset, users, cfg.shown)
        cosine = normalise_rows(mean_item_vectors(self.item_vectors_, shown) @ self.item_vectors_.T)
        masked = shown.nonzero()
        results, overlaps = [], []
        for prior in cfg.priors:
            scores = cosine + prior * self.log_popularity_
            scores[masked] = -np.inf
            results.append(ndcg_of_scores(scores, truth, 10))
            overlaps.append(list_overlap(scores, 10, seed=cfg.seed))
        best = best_distinct(results, overlaps, cfg.max_overlap)
        return float(cfg.priors[best]), np.array([list(cfg.priors), results, overlaps], dtype=np.float64)

    def reads_text_vectors(self) -> bool:
        return True

    def matched_words(self, text: str, items: np.ndarray) -> list[tuple[str, ...]]:
        """The words of ``text`` that ask for something (not the ones after "no", "anything but"...; not stop
        words, 3+ letters, in order) found in each item's text."""
        wanted = split_negation(text)[0]
        words = list(dict.fromkeys(w for w in _WORD.findall(wanted.lower()) if w not in ENGLISH_STOP_WORDS))
        out = []
        for item in np.asarray(items, dtype=np.int64):
            found = set(_WORD.findall(str(self.documents_[item]).lower()))
            out.append(tuple(w for w in words if w in found or w.rstrip("s") in found))
        return out

    def fits(self, vector: np.ndarray | None) -> bool:
        """Whether ``vector`` lives in this model's text space."""
        return vector is not None and vector.shape == (self.item_vectors_.shape[1],) and bool(np.any(vector))

    def vector_scores(self, vectors: np.ndarray) -> np.ndarray:
        """Scores (rows of ``vectors`` x items) of text vectors."""
        meaning, prior = self.vector_parts(vectors)
        return meaning + prior

    def vector_parts(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The two terms of :meth:`vector_scores`: what the words mean (z-normalised cosine) and the popularity
        prior (an explanation must not credit the words with what popularity did)."""
        vectors = np.asarray(vectors, dtype=np.float64)
        one = vectors.ndim == 2 and vectors.shape[0] == 1  # a new user: kept for explaining what was recommended
        # The fitted arrays are part of the key: a model fitted or loaded again must not answer from the last fit.
        key = (vectors.shape, vectors.tobytes(), id(self.item_vectors_), id(self.log_popularity_), self.prior_)
        memo = last_call(self, "vector_parts")
        if one and memo.key == key and memo.source[0] is self.item_vectors_ and memo.source[1] is self.log_popularity_:
            return memo.value
        cosine = l2_rows(vectors) @ self.item_vectors_.T
        parts = normalise_rows(cosine), np.tile(self.prior_ * self.log_popularity_, (len(cosine), 1))
        if one:
            parts = (read_only(parts[0]), read_only(parts[1]))
            memo.key, memo.value, memo.source = key, parts, (self.item_vectors_, self.log_popularity_)
        return parts

    def query_vector(self, query: NewUser) -> np.ndarray | None:
        """The text vector that :meth:`score_new` reads for ``query``: its words, else the mean of its items'
        texts (None when it has neither)."""
        if self.fits(query.vector):
            assert query.vector is not None
            return query.vector.reshape(1, -1)
        if query.n_history:
            return mean_item_vectors(self.item_vectors_, query.history)
        return None

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        if not len(self.user_vectors_):
            return self._score_histories(self.seen_[user_rows])
        return self.vector_scores(self.user_vectors_[user_rows])

    def _score_histories(self, history: sp.csr_matrix) -> np.ndarray:
        return self.vector_scores(mean_item_vectors(self.item_vectors_, history))

    def _contributions(self, query: NewUser) -> dict[str, np.ndarray]:
        # What the words (or the items' texts) mean, and the popularity prior: never credit words with it.
        vector = self.query_vector(query)
        if vector is None:
            return {"popular": self.fallback_scores(1)[0]}
        meaning, prior = self.vector_parts(vector)
        return {"text": meaning[0], "popular": prior[0]}

    def _score_new(self, query: NewUser) -> np.ndarray:
        if self.fits(query.vector):
            assert query.vector is not None
            return self.vector_scores(query.vector.reshape(1, -1))[0]
        if query.n_history:
            return self._score_histories(query.history)[0]
        return self.fallback_scores(1)[0]

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "item_vectors": self.item_vectors_,
            "user_vectors": self.user_vectors_,
            "log_popularity": self.log_popularity_,
            "prior": np.array(self.prior_),
            "prior_trials": self.prior_trials_,
            "documents": self.documents_,
        }

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_vectors_ = arrays["item_vectors"]
        self.user_vectors_ = arrays["user_vectors"]
        self.log_popularity_ = arrays["log_popularity"]
        self.prior_ = float(arrays["prior"])
        self.prior_trials_ = arrays["prior_trials"]
        self.documents_ = arrays["documents"]
