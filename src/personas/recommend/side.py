"""What is known about users besides their behaviour (own text, demographics), as words, and a ridge regression
from those words to items (attribute-conditioned popularity).

- :class:`SideText`: the vocabulary of side words, their TF-IDF vectors (for finding users with similar side
  text) and binary indicators (for the ridge);
- :class:`SideRidge`: ``item_mean + (b - side_mean) @ weights`` from binary side words ``b`` to item scores,
  fitted on the users with history: what users sharing the age band, gender, occupation, words of their own
  text took, shrunk toward global popularity.
"""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

from personas.recommend._rows import derived, diagonal, l2_rows

__all__ = ["SideRidge", "SideText", "side_text_with_bands"]

TOKEN_PATTERN = r"(?u)\b\w+\b"  # keeps ages such as "24" and one-letter codes
_AGE = re.compile(r"\b(\d{1,3})[- ]year[- ]old\b")
# MovieLens-1M's age bands: one exact age ("24") is shared by few users, a band by many.
_AGE_BANDS = (18, 25, 35, 45, 50, 56)


def side_text_with_bands(text: str) -> str:
    """The side text plus an age-band token when it states an age ("a 24-year-old ..." -> "age_band_1")."""
    match = _AGE.search(text)
    if match is None:
        return text
    return f"{text} age_band_{int(np.searchsorted(_AGE_BANDS, int(match.group(1)), side='right'))}"


class SideText:
    """Side words of the known users: ``terms_``, ``idf_``, ``vectors_`` (users x terms TF-IDF, rows unit
    norm), ``texts_`` (each user's side text, age band added). ``fit`` returns the users' binary indicators."""

    def __init__(self, max_terms: int = 2000) -> None:
        self.max_terms = max_terms
        self._counter: CountVectorizer | None = None  # a cache for counts(), not state
        self._counter_terms: np.ndarray | None = None

    def fit(self, texts: list[str]) -> sp.csr_matrix:
        """Learn the vocabulary and IDF of the users' side ``texts`` (one per user); their binary word
        indicators (users x terms) come back for fitting a :class:`SideRidge`."""
        texts = [side_text_with_bands(t) for t in texts]
        counter = CountVectorizer(token_pattern=TOKEN_PATTERN, dtype=np.float64, max_features=self.max_terms)
        try:
            counts = counter.fit_transform(texts)
            self.terms_ = np.asarray(counter.get_feature_names_out(), dtype=str)
        except ValueError:  # nobody has any side text
            counts = sp.csr_matrix((len(texts), 0))
            self.terms_ = np.array([], dtype=str)
        df = np.asarray((counts > 0).sum(axis=0)).ravel()
        self.idf_ = np.log((1.0 + len(texts)) / (1.0 + df)) + 1.0
        self.vectors_ = self.tfidf(counts)
        self.texts_ = np.asarray(texts, dtype=str)
        return binary(counts)

    def counts(self, texts: list[str]) -> sp.csr_matrix:
        """Word counts (len(texts) x terms) of side texts, age bands added."""
        if len(self.terms_) == 0:
            return sp.csr_matrix((len(texts), 0))
        if self._counter is None or self._counter_terms is not self.terms_:
            vocabulary = {term: i for i, term in enumerate(self.terms_.tolist())}
            self._counter = CountVectorizer(token_pattern=TOKEN_PATTERN, vocabulary=vocabulary, dtype=np.float64)
            self._counter_terms = self.terms_
        return sp.csr_matrix(self._counter.transform([side_text_with_bands(t) for t in texts]))

    def tfidf(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """TF-IDF rows (unit norm) of word ``counts``."""
        weighted = sp.csr_matrix(counts @ derived(self, "idf", self.idf_, lambda: diagonal(self.idf_)))
        return l2_rows(weighted).tocsr() if weighted.shape[1] else weighted

    def vector(self, text: str) -> sp.csr_matrix:
        """The TF-IDF row of one side text."""
        return self.tfidf(self.counts([text]))

    def binary_of(self, texts: list[str]) -> sp.csr_matrix:
        """Binary word indicators (len(texts) x terms) of side texts."""
        return binary(self.counts(texts))

    def state(self) -> dict[str, np.ndarray]:
        return {
            "terms": self.terms_,
            "texts": self.texts_,
            "idf": self.idf_,
            "data": self.vectors_.data,
            "indices": self.vectors_.indices,
            "indptr": self.vectors_.indptr,
        }

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], max_terms: int) -> SideText:
        side = cls(max_terms)
        side.terms_ = arrays["terms"]
        side.texts_ = arrays["texts"]
        side.idf_ = arrays["idf"]
        side.vectors_ = sp.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=(len(side.texts_), len(side.terms_))
        )
        return side


def binary(counts: sp.csr_matrix) -> sp.csr_matrix:
    return sp.csr_matrix(counts > 0, dtype=np.float64)


def ridge(features: np.ndarray, targets: sp.csr_matrix, target_mean: np.ndarray, l2: float) -> np.ndarray:
    """Ridge coefficients (features' columns x targets' columns) of centred ``features`` on ``targets`` minus
    ``target_mean``; the dual form when there are fewer rows than features (the same solution, a smaller
    system). The targets stay sparse in the primal form: centred features sum to zero over rows, so
    ``F'(X - 1 mean') = F'X``."""
    n, d = features.shape
    if n < d:
        centred = targets.toarray() - target_mean
        return features.T @ np.linalg.solve(features @ features.T + l2 * np.eye(n), centred)
    return np.linalg.solve(features.T @ features + l2 * np.eye(d), np.asarray((targets.T @ features).T))


class SideRidge:
    """Item scores from binary side words: ``item_mean_ + (b - side_mean_) @ weights_``."""

    def fit(self, features: sp.csr_matrix, taken: sp.csr_matrix, l2: float) -> SideRidge:
        """Fit on users' binary side words ``features`` (users x terms) and what they took (users x items);
        ``l2 <= 0`` keeps global popularity (no side weights)."""
        n_users, n_terms = features.shape
        self.item_mean_ = np.asarray(taken.mean(axis=0)).ravel() if n_users else np.zeros(taken.shape[1])
        dense = features.toarray()
        self.side_mean_ = dense.mean(axis=0) if n_users else np.zeros(n_terms)
        if l2 <= 0 or n_terms == 0 or n_users == 0:
            self.weights_ = np.zeros((n_terms, taken.shape[1]))
        else:
            self.weights_ = ridge(dense - self.side_mean_, taken, self.item_mean_, l2)
        return self

    def scores(self, features: sp.csr_matrix) -> np.ndarray:
        """Attribute-conditioned popularity (rows of binary side words -> item scores)."""
        return self.item_mean_ + (np.asarray(features.todense()) - self.side_mean_) @ self.weights_

    def state(self) -> dict[str, np.ndarray]:
        return {"item_mean": self.item_mean_, "side_mean": self.side_mean_, "weights": self.weights_}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray]) -> SideRidge:
        model = cls()
        model.item_mean_, model.side_mean_, model.weights_ = arrays["item_mean"], arrays["side_mean"], arrays["weights"]
        return model
