"""FeatureCF: collaborative filtering through item features, so items nobody has taken yet can be ranked.

Every user's interaction row is regressed on the items' features by ridge regression (one closed-form solve
shared by all users): ``P = X F (F'F + l2 I)^-1`` (users x features), and an item -- taken or brand new --
scores ``P @ f_item``. The regression includes every item a user did *not* take, so a feature's weight says
how much more than average the user's kind of people took items with it: features that track popularity
(the release year on MovieLens, whose ratings were collected in 1997-98) carry weight for everyone, genres
for those who like them. Equivalently, a new item scores like a kernel-ridge interpolation of the user's
row over the taken items most like it.

Features (each block scaled to unit row norm, then weighted): genres, release year and decade (from a
``release_year`` column or a year in parentheses in the title), a constant, and optionally TF-IDF of title
words / item text, knowledge-graph facts, and item vectors given as an array (e.g. sentence embeddings made
by the pipeline; recommend never encodes text itself).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize

from personas.config import ComponentConfig
from personas.data import Dataset, genre_tokens, item_texts, kg_facts
from personas.holdout import first_best
from personas.recommend._checks import require
from personas.recommend.base import FitInputs, NewUser
from personas.recommend.content import ItemVectorModel

__all__ = [
    "COLD_ITEM_SCALES",
    "FeatureCF",
    "FeatureCFConfig",
    "choose_fill_scale",
    "fill_cold_items",
    "item_feature_blocks",
]

#: Candidate scales of the new-item fill (see fill_cold_items), tried in this order (the first wins ties).
COLD_ITEM_SCALES = (1.0, 0.5, 0.25, 0.0)

_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")


class FeatureCFConfig(ComponentConfig):
    """Ridge penalty and the weight of each feature block (0 leaves a block out).

    On the cold-item validation split of ml-100k (NDCG@10 over held-out items): genres + year l2=10 .307,
    + decade .304, genres + decade only .249, + knowledge-graph facts .292-.299, + title words .292; the
    evaluation's validation grid (l2 in 3, 10, 30, 100) chose l2=100.
    """

    kind: ClassVar[str] = "feature_cf"

    l2: float = 100.0
    genres: float = 1.0
    year: float = 1.0
    decade: float = 1.0
    constant: float = 1.0
    words: float = 0.0  # TF-IDF of title and item text
    kg: float = 0.0  # knowledge-graph facts (RecBole .kg/.link files beside the dataset)
    vectors: float = 1.0  # item vectors given to fit, if any
    # the items' texts in the language-model space (item_text_vectors given to fit, if any); 0 leaves them out.
    # On the cold-item validation split of ml-100k (MiniLM item texts) 1 beat 0 at every l2 (3-100: +0.3 to
    # +0.9 NDCG@10 points); test NDCG@10 0.3295 -> 0.3516.
    text_vectors: float = 1.0
    max_terms: int = 2000  # per text block: the solve is cubic in the number of features

    def model_post_init(self, _context: object) -> None:
        require(self.l2 > 0, "FeatureCF", "l2", "a float > 0", self.l2)
        for name in ("genres", "year", "decade", "constant", "words", "kg", "vectors", "text_vectors"):
            require(getattr(self, name) >= 0, "FeatureCF", name, "a float >= 0", getattr(self, name))
        require(self.max_terms >= 1, "FeatureCF", "max_terms", "an int >= 1", self.max_terms)


def _years(items: pd.DataFrame) -> np.ndarray:
    """Release year per item (NaN where unknown), from ``release_year`` or a trailing "(1995)" in the title."""
    years = pd.to_numeric(items["release_year"], errors="coerce") if "release_year" in items else None
    if "title" in items:
        from_title = pd.to_numeric(items["title"].astype(str).str.extract(_YEAR_IN_TITLE)[0], errors="coerce")
        years = from_title if years is None else years.fillna(from_title)
    return np.full(len(items), np.nan) if years is None else years.to_numpy(dtype=np.float64)


def _one_hot(tokens: list[str]) -> sp.csr_matrix:
    return sp.csr_matrix(CountVectorizer(token_pattern=r"\S+", binary=True, dtype=np.float64).fit_transform(tokens))


def _tfidf(texts: list[str], max_terms: int, pattern: str) -> sp.csr_matrix | None:
    vectorizer = TfidfVectorizer(token_pattern=pattern, min_df=2, sublinear_tf=True, max_features=max_terms)
    try:
        return sp.csr_matrix(vectorizer.fit_transform(texts))
    except ValueError:  # no term in two items or more
        return None


def item_feature_blocks(
    dataset: Dataset,
    config: FeatureCFConfig,
    item_vectors: np.ndarray | None = None,
    item_text_vectors: np.ndarray | None = None,
) -> sp.csr_matrix:
    """The weighted feature matrix (items x features) that FeatureCF regresses on."""
    items = dataset.items
    blocks: list[sp.csr_matrix] = []
    if config.genres and "genres" in items:
        genres = genre_tokens(dataset, strings_only=False)
        if any(genres):
            blocks.append(config.genres * normalize(_one_hot([" ".join(tokens) for tokens in genres])))
    years = _years(items)
    known = ~np.isnan(years)
    if known.any():
        if config.year:
            blocks.append(
                config.year * _one_hot([f"y{int(y)}" if ok else "y?" for y, ok in zip(years, known, strict=True)])
            )
        if config.decade:
            decades = [f"d{int(y) // 10}" if ok else "d?" for y, ok in zip(years, known, strict=True)]
            blocks.append(config.decade * _one_hot(decades))
    if config.words:
        words = _tfidf(item_texts(dataset, "fields", fields=("title", "text")), config.max_terms, r"(?u)\b\w\w+\b")
        if words is not None:
            blocks.append(config.words * words)
    if config.kg:
        facts = kg_facts(dataset)
        if facts:
            kg = _tfidf([" ".join(facts.get(str(i), [])) for i in items["item_id"]], config.max_terms, r"\S+")
            if kg is not None:
                blocks.append(config.kg * kg)
    if item_vectors is not None and config.vectors:
        blocks.append(sp.csr_matrix(config.vectors * normalize(item_vectors)))
    if item_text_vectors is not None and config.text_vectors:
        blocks.append(sp.csr_matrix(config.text_vectors * normalize(item_text_vectors)))
    if config.constant or not blocks:
        blocks.append(sp.csr_matrix(np.full((dataset.n_items, 1), config.constant or 1.0)))
    return sp.hstack(blocks, format="csr", dtype=np.float64)


class FeatureCF(ItemVectorModel):
    """Scores ``(x_u @ G) @ F'`` with ``G = F (F'F + l2 I)^-1``; items nobody took score from their features.

    ``fit(dataset, item_vectors=None)``; a new user is scored from their history the same way.
    """

    Config = FeatureCFConfig
    config: FeatureCFConfig

    def _fit(self, inputs: FitInputs) -> None:
        features = item_feature_blocks(inputs.dataset, self.config, inputs.item_vectors, inputs.item_text_vectors)
        # Only items someone took are samples of the regression: an item nobody took yet is unknown, not
        # disliked (held-out new releases would otherwise pull their year's weight down).
        taken = sp.diags((self.popularity_ > 0).astype(np.float64)) @ features
        gram = np.asarray((taken.T @ taken).todense())
        gram[np.diag_indices_from(gram)] += self.config.l2
        # G = F (F'F + l2 I)^-1, solved (not inverted) from the symmetric system.
        self.item_weights_ = np.linalg.solve(gram, taken.toarray().T).T
        self.item_features_ = features.toarray()

    def profiles(self, rows: sp.csr_matrix) -> np.ndarray:
        """Users' feature preferences (rows of a binary users x items matrix -> users x features)."""
        return np.asarray(rows @ self.item_weights_)

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return self.profiles(self.seen_[user_rows]) @ self.item_features_.T

    def _score_new(self, query: NewUser) -> np.ndarray:
        if query.n_history == 0:
            return self.fallback_scores(1)[0]
        return (self.profiles(query.history) @ self.item_features_.T).ravel()

    def cold_item_scores(self, history: sp.csr_matrix) -> np.ndarray:
        """Scores (users x items) from histories (rows of a binary matrix), for blending into other models
        where they have nothing to say: items nobody took."""
        return self.profiles(history) @ self.item_features_.T

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_weights": self.item_weights_, "item_features": self.item_features_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_weights_ = arrays["item_weights"]
        self.item_features_ = arrays["item_features"]


def fill_cold_items(
    scores: np.ndarray, model: FeatureCF | None, history: sp.csr_matrix, *, scale: float = 1.0
) -> np.ndarray:
    """``scores`` (users x items) with the items nobody took in training scored by ``model`` instead.

    Collaborative parts have nothing to say about such items (EASE, item-kNN and popularity give them 0), so
    they get FeatureCF's scores, put on the scale of ``scores`` per user: the least-squares line from
    FeatureCF's scores to ``scores`` over the items that were taken predicts what the blend would have said.
    A weak agreement keeps new items near the user's average (they rarely push a well-founded warm item out
    of a top-10); the slope is kept positive, so new items are always ranked among themselves by FeatureCF.
    Users without any history (empty rows) keep their scores. ``scale`` multiplies the slope: 0 keeps new
    items at each user's average (ranked among themselves by FeatureCF), 1 is the fitted line.
    """
    if model is None:
        return scores
    taken = model.popularity_ > 0
    cold = np.flatnonzero(~taken)
    users = np.flatnonzero(np.diff(sp.csr_matrix(history).indptr) > 0)
    if not len(cold) or not len(users) or not taken.any():
        return scores
    out = np.array(scores, dtype=np.float64, copy=True)
    predicted = model.cold_item_scores(sp.csr_matrix(history)[users])
    known, target = predicted[:, taken], out[np.ix_(users, np.flatnonzero(taken))]
    known_mean, target_mean = known.mean(axis=1, keepdims=True), target.mean(axis=1, keepdims=True)
    spread = ((known - known_mean) ** 2).sum(axis=1, keepdims=True)
    slope = ((known - known_mean) * (target - target_mean)).sum(axis=1, keepdims=True) / np.maximum(spread, 1e-300)
    # The least slope keeps new items ordered by FeatureCF: they spread over 1e-4 of the user's own score
    # spread, invisible next to real score differences yet far above the evaluation's tie-break noise
    # (<= 1e-12 per item), which an absolute floor could fall below when a user's scores are small.
    known_std = np.sqrt(spread / known.shape[1])
    least = 1e-4 * target.std(axis=1, keepdims=True) / np.maximum(known_std, 1e-300)
    slope = np.maximum(scale * slope, np.maximum(least, 1e-6))
    out[np.ix_(users, cold)] = target_mean + slope * (predicted[:, cold] - known_mean)
    return out


def choose_fill_scale(
    scores: np.ndarray,
    model: FeatureCF,
    history: sp.csr_matrix,
    truth: sp.csr_matrix,
    scales: Sequence[float],
    metric: Callable[[np.ndarray, sp.csr_matrix, int], float],
    k: int = 10,
) -> tuple[float, np.ndarray]:
    """The scale of ``scales`` whose fill gives the best ``metric`` at ``k`` (the first of the best), and a
    (2, len(scales)) array of the scales and their results. ``scores`` and ``history`` are validation users'
    rows, ``model`` fitted on the validation's training part; each user's history is masked."""
    results = []
    for scale in scales:
        filled = fill_cold_items(scores, model, history, scale=scale)
        filled[history.nonzero()] = -np.inf
        results.append(metric(filled, truth, k))
    best = first_best(results)
    return float(scales[best]), np.array([list(scales), results], dtype=np.float64)
