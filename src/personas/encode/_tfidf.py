"""TF-IDF + truncated SVD (latent semantic analysis): the classic baseline, no model needed."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from personas.encode._base import ConfiguredEncoder, TextInput, check_batch_size, clean_texts, unit_rows
from personas.encode._config import TfidfConfig
from personas.errors import DataError, NotFittedError

__all__ = ["TfidfEncoder"]

# sklearn's default words (two or more word characters) plus single Chinese characters.
_CJK_TOKENS = r"(?u)\b\w\w+\b|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"


def _segmented(text: str) -> str:
    """sklearn's default preprocessing (lower case) with Chinese split into words (jieba), function words
    (pronouns, particles, conjunctions, ...) left out: single characters count, and 我/的/和 say nothing."""
    from personas.data.language import segment

    return segment(text.lower(), content_words=True)


class TfidfEncoder(ConfiguredEncoder[TfidfConfig]):
    """TF-IDF over words (and word pairs), reduced to ``n_components`` dimensions by a seeded truncated SVD.

    It must be fitted on a corpus first (``fit(texts)``), usually the same profile texts it will encode.
    Texts with no known word (empty, ``None``, only unseen words) get the fitted corpus' mean direction
    (the "average user") rather than a zero vector, so every row has unit length.

    Build it from a :class:`TfidfConfig` or its fields: ``TfidfEncoder(256, min_df=1)`` is
    ``TfidfEncoder(TfidfConfig(n_components=256, min_df=1))`` (n_components, ngram_max, min_df, max_features, seed).
    """

    Config = TfidfConfig
    primary = "n_components"

    def __init__(self, config: TfidfConfig | int | None = None, /, **params: Any) -> None:
        super().__init__(config, **params)

    def __repr__(self) -> str:
        return f"TfidfEncoder({self.config!r})"

    def fit(self, texts: Sequence[TextInput]) -> Self:
        """Learn the vocabulary, IDF weights and the SVD basis from a corpus."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        cfg = self.config
        cleaned = clean_texts(texts, where="TfidfEncoder.fit")
        docs = [t for t in cleaned if t]
        if len(docs) < 2:
            raise DataError(
                f"TfidfEncoder.fit needs at least 2 non-empty texts; got {len(docs)}. "
                "Fit it on the whole corpus you will encode."
            )
        min_df = cfg.min_df if len(docs) >= 4 * cfg.min_df else 1  # tiny corpora keep every word
        from personas.data.language import has_han

        # Chinese has no spaces between words: without segmentation each sentence is one "word" and none
        # reaches min_df. Single characters are words there (茶 tea, 猫 cat), so they count too.
        self.segment_ = any(has_han(d) for d in docs)
        vectorizer = TfidfVectorizer(
            ngram_range=(1, cfg.ngram_max),
            min_df=min_df,
            max_features=cfg.max_features,
            sublinear_tf=True,
            dtype=np.float64,
            **({"preprocessor": _segmented, "token_pattern": _CJK_TOKENS} if self.segment_ else {}),
        )
        try:
            matrix = vectorizer.fit_transform(docs)
        except ValueError:  # no word at all, or none in min_df texts
            shared = f" shared by at least {min_df} of them" if min_df > 1 else ""
            fix = "lower min_df (e.g. 1) or fit on more texts" if min_df > 1 else "fit on texts that contain words"
            raise DataError(
                f"TfidfEncoder.fit found no word{shared} in {len(docs)} texts (min_df={min_df}); {fix}."
            ) from None
        dim = min(cfg.n_components, matrix.shape[1] - 1, len(docs) - 1)
        if dim < 1:
            raise DataError(
                f"TfidfEncoder.fit: {matrix.shape[1]} distinct term(s) in {len(docs)} texts are too "
                "few for even one dimension; fit on a larger corpus."
            )
        if dim < cfg.n_components:
            warnings.warn(
                f"TfidfEncoder: n_components={cfg.n_components} reduced to {dim}: the corpus has "
                f"{len(docs)} texts and {matrix.shape[1]} terms.",
                UserWarning,
                stacklevel=2,
            )
        svd = TruncatedSVD(n_components=dim, algorithm="randomized", n_iter=7, random_state=cfg.seed)
        reduced = svd.fit_transform(matrix)
        self.vectorizer_: Any = vectorizer
        self.components_ = svd.components_.astype(np.float64)
        self.dim_ = dim
        first_axis = np.eye(1, dim, dtype=np.float32)[0]  # only if the corpus mean is exactly zero
        self.empty_vector_ = unit_rows(unit_rows(reduced).mean(axis=0, keepdims=True), fallback=first_axis)[0]
        digest = hashlib.sha256()
        digest.update(" ".join(sorted(vectorizer.vocabulary_)).encode())
        digest.update(vectorizer.idf_.tobytes())
        digest.update(self.components_.tobytes())
        words = ":jieba" if self.segment_ else ""
        self.name_ = f"tfidf-lsa:{dim}d:ng{cfg.ngram_max}{words}@{digest.hexdigest()[:12]}"
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise NotFittedError("This TfidfEncoder is not fitted yet. Call fit(texts) on your corpus first.")

    @property
    def name(self) -> str:
        """Identity: dimensions, n-grams and a hash of the fitted vocabulary, IDF and basis."""
        self._check_fitted()
        return self.name_

    @property
    def dim(self) -> int:
        self._check_fitted()
        return self.dim_

    def encode(
        self, texts: Sequence[TextInput], *, batch_size: int | None = None, show_progress: bool | None = None
    ) -> np.ndarray:
        """Unit-length float32 vectors (``batch_size`` limits the rows transformed at once)."""
        self._check_fitted()
        batch = check_batch_size(batch_size, 4096, "TfidfEncoder")
        cleaned = clean_texts(texts, where="TfidfEncoder")
        out = np.empty((len(cleaned), self.dim_), dtype=np.float32)
        for start in range(0, len(cleaned), batch):
            sparse = self.vectorizer_.transform(cleaned[start : start + batch])
            out[start : start + batch] = unit_rows(sparse @ self.components_.T, fallback=self.empty_vector_)
        return out
