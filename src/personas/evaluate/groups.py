"""Group quality in the evaluation harness, and group sources that see train data only.

Groups arrive as int label arrays (one per user row, -1 = no group). Measured here:

- internal: silhouette (cosine, on a seeded sample) and Davies-Bouldin on the vectors that were grouped;
- agreement with a true grouping where one exists: NMI and ARI;
- stability: mean pairwise ARI of labelings from different seeds (or bootstraps);
- how much the groups explain behaviour: GroupPopular vs MostPopular on the same split (see
  :func:`group_behaviour_experiment`).

Group sources (:data:`~personas.evaluate.GroupSource`) are functions of the *train* dataset, so group labels
never see test interactions. :func:`behaviour_groups` (k-means on a truncated SVD of the train matrix) is the
simple reference; :func:`profile_groups` groups users by their profile text (TF-IDF + SVD + k-means), which
also places users without history by their side information alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp

from personas.data import Dataset, ProfileConfig, build_profiles
from personas.errors import ConfigError, DataError

__all__ = [
    "GroupReport",
    "NoProfileTextError",
    "behaviour_groups",
    "behaviour_vectors",
    "encoder_vectorizer",
    "group_report",
    "labeling_stability",
    "profile_groups",
    "profile_vectors",
    "side_groups",
]


@dataclass(frozen=True)
class GroupReport:
    n_groups: int
    sizes: list[int]
    silhouette: float | None
    davies_bouldin: float | None
    stability_ari: float | None = None
    nmi: float | None = None
    ari: float | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def group_report(
    vectors: np.ndarray,
    labels: np.ndarray,
    *,
    truth: Sequence[object] | np.ndarray | None = None,
    stability_ari: float | None = None,
    sample_size: int = 3000,
    seed: int = 0,
) -> GroupReport:
    """Internal quality of ``labels`` on ``vectors`` (users without a group, -1, are left out) and, with
    ``truth``, NMI/ARI against it."""
    from sklearn.metrics import (
        adjusted_rand_score,
        davies_bouldin_score,
        normalized_mutual_info_score,
        silhouette_score,
    )

    labels = np.asarray(labels)
    if labels.shape != (len(vectors),):
        raise ConfigError(f"group_report: {len(labels)} labels for {len(vectors)} vectors; pass one label per row.")
    keep = labels >= 0
    x, y = np.asarray(vectors, dtype=np.float64)[keep], labels[keep]
    groups = np.unique(y)
    silhouette = davies = None
    if 2 <= len(groups) < len(y):
        silhouette = float(
            silhouette_score(x, y, metric="cosine", sample_size=min(sample_size, len(y)), random_state=seed)
        )
        davies = float(davies_bouldin_score(x, y))
    nmi = ari = None
    if truth is not None:
        t = np.asarray(truth, dtype=object)[keep].astype(str)
        nmi = float(normalized_mutual_info_score(t, y))
        ari = float(adjusted_rand_score(t, y))
    return GroupReport(
        n_groups=len(groups),
        sizes=[int((y == g).sum()) for g in groups],
        silhouette=silhouette,
        davies_bouldin=davies,
        stability_ari=stability_ari,
        nmi=nmi,
        ari=ari,
    )


def labeling_stability(fit_labels: Callable[[int], np.ndarray], seeds: Sequence[int] = (0, 1, 2, 3, 4)) -> float:
    """Mean pairwise ARI of the labelings ``fit_labels(seed)`` for each seed (1.0 = identical partitions)."""
    from sklearn.metrics import adjusted_rand_score

    if len(seeds) < 2:
        raise ConfigError(f"labeling_stability needs at least 2 seeds. Got {len(seeds)} instead.")
    runs = [np.asarray(fit_labels(s)) for s in seeds]
    return float(np.mean([adjusted_rand_score(a, b) for a, b in itertools.combinations(runs, 2)]))


def _kmeans(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    k = min(k, len(x))
    return np.asarray(KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(x), dtype=np.int64)


def behaviour_vectors(train: Dataset, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Unit-length users x dim vectors from a truncated SVD of the binary train matrix (zero rows stay 0)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    m = train.matrix("binary")
    dim = max(1, min(dim, min(m.shape) - 1))
    return np.asarray(normalize(TruncatedSVD(n_components=dim, random_state=seed).fit_transform(m)))


def behaviour_groups(k: int = 8, *, dim: int = 32, seed: int = 0) -> Callable[[Dataset], np.ndarray]:
    """Group source: k-means on SVD behaviour vectors of train users; users without history get -1."""
    if k < 2:
        raise ConfigError(f"The 'k' parameter of behaviour_groups must be an int >= 2. Got {k!r} instead.")

    def source(train: Dataset) -> np.ndarray:
        active = np.diff(train.matrix("binary").indptr) > 0
        labels = np.full(train.n_users, -1, dtype=np.int64)
        labels[active] = _kmeans(behaviour_vectors(train, dim, seed)[active], k, seed)
        return labels

    return source


def profile_vectors(train: Dataset, dim: int = 64, seed: int = 0, config: ProfileConfig | None = None) -> np.ndarray:
    """Unit-length vectors of each user's profile text built from train (TF-IDF + truncated SVD)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    texts = [t or "" for t in build_profiles(train, config)]
    try:
        tfidf = TfidfVectorizer(min_df=2, sublinear_tf=True).fit_transform(texts)
    except ValueError:  # sklearn's "empty vocabulary": no word occurs in two profiles
        raise NoProfileTextError(
            f"Dataset {train.name!r}: no word occurs in the profile texts of two users "
            f"({sum(1 for t in texts if t)} of {len(texts)} profiles have any text), so there is nothing to group "
            "by text. Add user text, tags, demographics or item titles, or use behaviour groups."
        ) from None
    if not isinstance(tfidf, sp.csr_matrix):
        tfidf = sp.csr_matrix(tfidf)
    dim = max(1, min(dim, min(tfidf.shape) - 1))
    return np.asarray(normalize(TruncatedSVD(n_components=dim, random_state=seed).fit_transform(tfidf)))


class NoProfileTextError(DataError):
    """A text group source found no words to group users by."""


TextVectorizer = Callable[[Dataset, ProfileConfig], np.ndarray]
"""Profile texts of a dataset (built with a config) -> unit-length user vectors."""


def _tfidf_vectorizer(dim: int, seed: int) -> TextVectorizer:
    def vectorize(train: Dataset, config: ProfileConfig) -> np.ndarray:
        return profile_vectors(train, dim, seed, config)

    return vectorize


def encoder_vectorizer(kind: str = "minilm") -> TextVectorizer:
    """Profile texts encoded by a personas encoder (default: all-MiniLM-L6-v2, int8 ONNX); vectors of texts
    already seen are reused, since tuning encodes nearly the same profiles several times."""
    seen: dict[str, np.ndarray] = {}
    holder: list[object] = []

    def vectorize(train: Dataset, config: ProfileConfig) -> np.ndarray:
        from personas.encode import make_encoder

        if not holder:
            holder.append(make_encoder(kind))
        texts = [t or "" for t in build_profiles(train, config)]
        new = sorted({t for t in texts if t not in seen})
        if new:
            vectors = holder[0].encode(new)  # type: ignore[attr-defined]
            seen.update(zip(new, np.asarray(vectors, dtype=np.float64), strict=True))
        return np.vstack([seen[t] for t in texts])

    return vectorize


def profile_groups(
    k: int = 8,
    *,
    dim: int = 64,
    seed: int = 0,
    config: ProfileConfig | None = None,
    vectorizer: TextVectorizer | None = None,
) -> Callable[[Dataset], np.ndarray]:
    """Group source: k-means on the profile-text vectors of users with history; users without history are
    placed by side information alone.

    Their profile holds no behaviour, so clustering it with the others would only put them in a group of
    their own. Instead each group gets a centroid of its members' side-only profiles (the same profile
    without the behaviour part) and a user without history joins the group of the closest centroid.
    ``vectorizer``: how texts become vectors (default TF-IDF + SVD; :func:`encoder_vectorizer` for MiniLM).
    """
    if k < 2:
        raise ConfigError(f"The 'k' parameter of profile_groups must be an int >= 2. Got {k!r} instead.")
    base = config or ProfileConfig()
    side_config = base.model_copy(update={"parts": tuple(p for p in base.parts if p != "behaviour")})
    vectorize = vectorizer or _tfidf_vectorizer(dim, seed)

    def source(train: Dataset) -> np.ndarray:
        from sklearn.preprocessing import normalize

        active = np.diff(train.matrix("binary").indptr) > 0
        labels = np.full(train.n_users, -1, dtype=np.int64)
        labels[active] = _kmeans(vectorize(train, base)[active], k, seed)
        if (~active).any() and side_config.parts:
            side = vectorize(train, side_config)
            groups = np.unique(labels[active])
            centroids = normalize(np.vstack([side[labels == g].mean(axis=0) for g in groups]))
            labels[~active] = groups[np.argmax(side[~active] @ centroids.T, axis=1)]
        return labels

    return source


def side_groups(
    k: int = 8, *, dim: int = 64, seed: int = 0, config: ProfileConfig | None = None
) -> Callable[[Dataset], np.ndarray]:
    """Group source: k-means on side-only profile texts (the profile without behaviour: own text, reviews,
    tags, demographics) of every user, so users with and without history are grouped alike."""
    if k < 2:
        raise ConfigError(f"The 'k' parameter of side_groups must be an int >= 2. Got {k!r} instead.")
    base = config or ProfileConfig()
    side_config = base.model_copy(update={"parts": tuple(p for p in base.parts if p != "behaviour")})

    def source(train: Dataset) -> np.ndarray:
        return _kmeans(profile_vectors(train, dim, seed, side_config), k, seed)

    return source
