"""ContentBased: a user profile vector (the mean of their items' vectors, or a given vector or text) against
item vectors. Item vectors are either given (e.g. sentence embeddings computed by the pipeline) or built here
as TF-IDF over each item's title, genres, text and, where the dataset folder has them, knowledge-graph facts
(``*.kg`` + ``*.link`` RecBole files: actors, directors, writers... as tokens such as ``actor_m_0bln8``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

from personas.config import ComponentConfig
from personas.data import Dataset, kg_facts
from personas.data import item_texts as data_item_texts
from personas.errors import ConfigError
from personas.recommend._checks import require
from personas.recommend._rows import derived, diagonal, l2_rows
from personas.recommend.base import FitInputs, NewUser, Recommender

__all__ = ["ContentBased", "ContentConfig", "ItemVectorModel", "item_texts"]

_TOKEN_PATTERN = r"(?u)\b\w\w+\b"


class ContentConfig(ComponentConfig):
    """TF-IDF settings (used when no item vectors are given) and whether to add knowledge-graph facts
    (off by default: on a validation split of ml-100k they halved content Recall@10, 0.0137 -> 0.0078)."""

    kind: ClassVar[str] = "content"

    use_kg: bool = False
    min_df: int = 2
    max_features: int | None = 50_000

    def model_post_init(self, _context: object) -> None:
        require(self.min_df >= 1, "ContentBased", "min_df", "an int >= 1", self.min_df)
        require(
            self.max_features is None or self.max_features >= 1,
            "ContentBased",
            "max_features",
            "None or an int >= 1",
            self.max_features,
        )


def item_texts(dataset: Dataset, *, use_kg: bool = True) -> list[str]:
    """One text per item row: title, genres, text and (optionally) knowledge-graph fact tokens."""
    return data_item_texts(dataset, "fields", facts=kg_facts(dataset) if use_kg else None)


class ItemVectorModel(Recommender):
    """A recommender that reads item vectors (n_items x d, e.g. sentence embeddings made by the pipeline) when
    ``fit`` is given them (``FitInputs.item_vectors``), and builds its own from item features otherwise."""

    part = "content"


class ContentBased(ItemVectorModel):
    """Cosine between a user profile and every item vector.

    ``fit(dataset, item_vectors=None)``: with ``item_vectors`` (n_items x d), new users may come as a vector
    in that space; without, TF-IDF item vectors are built and new users may come as text.
    """

    Config = ContentConfig
    config: ContentConfig
    _counter: CountVectorizer | None = None  # a cache for text_vector, not state
    _counter_terms: np.ndarray | None = None

    def _fit(self, inputs: FitInputs) -> None:
        dataset = inputs.dataset
        if inputs.item_vectors is not None:
            self.item_vectors_: np.ndarray | sp.csr_matrix = l2_rows(inputs.item_vectors)
            self.terms_ = np.array([], dtype=str)
            self.idf_ = np.array([], dtype=np.float64)
            return
        texts = item_texts(dataset, use_kg=self.config.use_kg)
        min_df = self.config.min_df if dataset.n_items >= 2 * self.config.min_df else 1
        counter = CountVectorizer(
            token_pattern=_TOKEN_PATTERN, min_df=min_df, max_features=self.config.max_features, dtype=np.float64
        )
        try:
            counts = counter.fit_transform(texts)
        except ValueError:  # no token at all: every item text is empty
            counter = CountVectorizer(token_pattern=r"(?u)\S+", dtype=np.float64)
            counts = counter.fit_transform([f"item_{i}" for i in range(dataset.n_items)])
        self.terms_ = np.asarray(counter.get_feature_names_out(), dtype=str)
        df = np.asarray((counts > 0).sum(axis=0)).ravel()
        self.idf_ = np.log((1.0 + dataset.n_items) / (1.0 + df)) + 1.0
        self.item_vectors_ = self._tfidf(counts)

    @property
    def uses_text(self) -> bool:
        """True when item vectors are TF-IDF built here (new users may come as text)."""
        return sp.issparse(self.item_vectors_)

    def _tfidf(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        weighted = sp.csr_matrix(counts, dtype=np.float64, copy=True)
        weighted.data = np.log1p(weighted.data)  # sublinear tf
        return l2_rows(weighted @ derived(self, "idf", self.idf_, lambda: diagonal(self.idf_))).tocsr()

    def _vectoriser(self) -> CountVectorizer:
        if not self.uses_text:
            raise ConfigError(
                "This ContentBased was fitted on given item vectors; encode the text with the same encoder and "
                "pass vector=... instead of text=."
            )
        # Built once per model: making the vocabulary dict costs more than transforming one text.
        if self._counter is None or self._counter_terms is not self.terms_:
            vocabulary = {term: i for i, term in enumerate(self.terms_.tolist())}
            self._counter = CountVectorizer(token_pattern=_TOKEN_PATTERN, vocabulary=vocabulary, dtype=np.float64)
            self._counter_terms = self.terms_
        return self._counter

    def text_vectors(self, texts: list[str]) -> sp.csr_matrix:
        """TF-IDF vectors (len(texts) x terms) of texts, in the space of the item vectors."""
        return self._tfidf(self._vectoriser().transform(texts))

    def text_vector(self, text: str) -> sp.csr_matrix:
        """The TF-IDF vector (1 x terms) of a text, in the space of the item vectors."""
        return self.text_vectors([text])

    def text_scores(self, texts: list[str]) -> np.ndarray:
        """Scores (len(texts) x n_items) of profiles made of each text alone, in one batch."""
        if not texts:
            return np.zeros((0, self.n_items_))
        return self._profile_scores(self.text_vectors(texts))

    def known_only_by(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> np.ndarray:
        """Scores (len(texts) x items) of users known only by what they say about themselves: their text (when
        the item vectors are TF-IDF) or their vector (when it lives in the given item vectors' space); zero
        rows for users with neither."""
        out = np.zeros((len(texts), self.n_items_))
        if self.uses_text:
            has = np.array([bool(t) for t in texts], dtype=bool)
            if has.any():
                out[has] = self.text_scores([t for t in texts if t])
            return out
        if vectors is not None and vectors.shape[1:] == (self.item_vectors_.shape[1],):
            empty = sp.csr_matrix((1, self.n_items_))
            for i, vector in enumerate(vectors):
                out[i] = self.score_new(NewUser(None, vector, empty, None))
        return out

    def _profile_scores(self, profiles: np.ndarray | sp.spmatrix) -> np.ndarray:
        profiles = l2_rows(profiles)
        items = self.item_vectors_
        # A sparse product converts the transposed items to CSR first: done once here instead.
        if sp.issparse(items) and sp.issparse(profiles):
            scores = profiles @ derived(self, "items_by_term", items, lambda: sp.csr_matrix(items.T))
        else:
            scores = profiles @ items.T
        return np.asarray(scores.todense() if sp.issparse(scores) else scores, dtype=np.float64)

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return self._profile_scores(self.seen_[user_rows] @ self.item_vectors_)

    def _score_histories(self, history: sp.csr_matrix) -> np.ndarray:
        return self._profile_scores(history @ self.item_vectors_)

    def _score_new(self, query: NewUser) -> np.ndarray:
        parts: list[np.ndarray | sp.spmatrix] = []
        if query.n_history:
            parts.append(l2_rows(query.history @ self.item_vectors_))
        if query.text:
            if self.uses_text:
                parts.append(self.text_vector(query.text))
            elif query.vector is None:
                raise ConfigError(
                    "This ContentBased was fitted on given item vectors; pass the user's vector=, not text=."
                )
        if query.vector is not None:
            dim = self.item_vectors_.shape[1]
            if query.vector.shape != (dim,):
                raise ConfigError(
                    f"ContentBased.recommend_new: the vector must have {dim} values (the item vectors' dimension); "
                    f"got {query.vector.shape[0]}."
                )
            parts.append(l2_rows(query.vector.reshape(1, -1)))
        if not parts:
            return self.fallback_scores(1)[0]
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return self._profile_scores(sp.csr_matrix(total) if self.uses_text else np.asarray(total))[0]

    def _state(self) -> dict[str, np.ndarray]:
        if self.uses_text:
            m = sp.csr_matrix(self.item_vectors_)
            return {
                "terms": self.terms_,
                "idf": self.idf_,
                "vec_data": m.data,
                "vec_indices": m.indices,
                "vec_indptr": m.indptr,
            }
        return {"item_vectors": np.asarray(self.item_vectors_)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        if "item_vectors" in arrays:
            self.item_vectors_ = arrays["item_vectors"]
            self.terms_ = np.array([], dtype=str)
            self.idf_ = np.array([], dtype=np.float64)
            return
        self.terms_, self.idf_ = arrays["terms"], arrays["idf"]
        self.item_vectors_ = sp.csr_matrix(
            (arrays["vec_data"], arrays["vec_indices"], arrays["vec_indptr"]), shape=(self.n_items_, len(self.terms_))
        )
