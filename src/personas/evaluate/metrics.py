"""Ranking metrics, computed per user list and then averaged.

Two layers:

- plain functions over one ranked list (``ndcg_at_k(ranked, relevant, k)``): the reference definitions,
  easy to check by hand;
- :class:`Metric` objects used by :class:`~personas.evaluate.Experiment`: the same definitions vectorised
  over a batch of lists (``ranked``: users x K item rows, -1 = padding; ``hits``: the same shape, True where
  the item is relevant; ``n_relevant``: relevant items per user). Tests check both layers agree.

Relevance is binary. Where a user has more relevant items than K, NDCG and MAP normalise by the best
possible list of length K (``min(n_relevant, K)``); Recall divides by all relevant items.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from personas.data import Dataset, genre_tokens
from personas.errors import ConfigError

__all__ = [
    "MAP",
    "MRR",
    "NDCG",
    "Coverage",
    "HitRate",
    "IntraListDiversity",
    "Metric",
    "MetricContext",
    "Novelty",
    "Precision",
    "Recall",
    "average_precision_at_k",
    "default_metrics",
    "hit_rate_at_k",
    "ndcg_at_k",
    "parse_metric",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank_at_k",
]


# -- one list ---------------------------------------------------------------------------------------------
def _head(ranked: Sequence[int], k: int) -> list[int]:
    return [int(i) for i in list(ranked)[:k] if int(i) >= 0]


def recall_at_k(ranked: Sequence[int], relevant: Collection[int], k: int) -> float:
    if not relevant:
        return 0.0
    return sum(i in relevant for i in _head(ranked, k)) / len(relevant)


def precision_at_k(ranked: Sequence[int], relevant: Collection[int], k: int) -> float:
    return sum(i in relevant for i in _head(ranked, k)) / k


def hit_rate_at_k(ranked: Sequence[int], relevant: Collection[int], k: int) -> float:
    return float(any(i in relevant for i in _head(ranked, k)))


def ndcg_at_k(ranked: Sequence[int], relevant: Collection[int], k: int) -> float:
    dcg = sum(1.0 / math.log2(pos + 2) for pos, i in enumerate(list(ranked)[:k]) if int(i) in relevant)
    ideal = sum(1.0 / math.log2(pos + 2) for pos in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def reciprocal_rank_at_k(ranked: Sequence[int], relevant: Collection[int], k: int) -> float:
    for pos, i in enumerate(list(ranked)[:k]):
        if int(i) in relevant:
            return 1.0 / (pos + 1)
    return 0.0


def average_precision_at_k(ranked: Sequence[int], relevant: Collection[int], k: int) -> float:
    hits, total = 0, 0.0
    for pos, i in enumerate(list(ranked)[:k]):
        if int(i) in relevant:
            hits += 1
            total += hits / (pos + 1)
    denom = min(len(relevant), k)
    return total / denom if denom else 0.0


# -- batches ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MetricContext:
    """What beyond-accuracy metrics need: the train data and which items could be ranked."""

    train: Dataset
    n_candidates: int
    item_popularity: np.ndarray  # train users per item
    item_features: sp.csr_matrix  # items x features, rows L2-normalised (for diversity)

    @classmethod
    def build(cls, train: Dataset, candidates: np.ndarray | None = None) -> MetricContext:
        pop = np.asarray(train.matrix("binary").sum(axis=0)).ravel()
        return cls(
            train=train,
            n_candidates=train.n_items if candidates is None else len(candidates),
            item_popularity=pop,
            item_features=item_feature_matrix(train),
        )


def item_feature_matrix(dataset: Dataset) -> sp.csr_matrix:
    """Item vectors for intra-list diversity: genres (multi-hot) where the items have them, else the item's
    column of the train matrix. Rows are L2-normalised; all-zero rows stay zero."""
    items = dataset.items
    if "genres" in items and items["genres"].notna().any():
        vocab: dict[str, int] = {}
        rows, cols = [], []
        for r, genres in enumerate(genre_tokens(dataset)):
            for g in genres:
                rows.append(r)
                cols.append(vocab.setdefault(g, len(vocab)))
        feats = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(dataset.n_items, max(1, len(vocab))))
    else:
        feats = dataset.matrix("binary").T.tocsr()
    feats.data[:] = 1.0
    norms = np.sqrt(np.asarray(feats.multiply(feats).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ feats)


class Metric:
    """A metric at cut-off ``k``. ``per_user`` gives one value per list (None for list-set metrics);
    ``overall`` gives the reported number (by default the mean of ``per_user``)."""

    label: str = "metric"

    def __init__(self, k: int = 10) -> None:
        if not isinstance(k, int) or k < 1:
            raise ConfigError(f"The 'k' parameter of {type(self).__name__} must be an int >= 1. Got {k!r} instead.")
        self.k = k

    @property
    def name(self) -> str:
        return f"{self.label}@{self.k}"

    def per_user(
        self, ranked: np.ndarray, hits: np.ndarray, n_relevant: np.ndarray, ctx: MetricContext
    ) -> np.ndarray | None:
        raise NotImplementedError

    def overall(self, ranked: np.ndarray, per_user: np.ndarray | None, ctx: MetricContext) -> float:
        return float(np.mean(per_user)) if per_user is not None and len(per_user) else float("nan")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(k={self.k})"


class Recall(Metric):
    label = "Recall"

    def per_user(self, ranked: np.ndarray, hits: np.ndarray, n_relevant: np.ndarray, ctx: MetricContext) -> np.ndarray:
        return hits[:, : self.k].sum(axis=1) / np.maximum(n_relevant, 1)


class Precision(Metric):
    label = "Precision"

    def per_user(self, ranked: np.ndarray, hits: np.ndarray, n_relevant: np.ndarray, ctx: MetricContext) -> np.ndarray:
        return hits[:, : self.k].sum(axis=1) / self.k


class HitRate(Metric):
    label = "HitRate"

    def per_user(self, ranked: np.ndarray, hits: np.ndarray, n_relevant: np.ndarray, ctx: MetricContext) -> np.ndarray:
        return np.asarray(hits[:, : self.k].any(axis=1), dtype=np.float64)


class NDCG(Metric):
    label = "NDCG"

    def per_user(self, ranked: np.ndarray, hits: np.ndarray, n_relevant: np.ndarray, ctx: MetricContext) -> np.ndarray:
        h = hits[:, : self.k]
        discount = 1.0 / np.log2(np.arange(2, h.shape[1] + 2))
        dcg = h @ discount
        ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, self.k + 2)))])
        idcg = ideal[np.minimum(n_relevant, self.k)]
        return np.asarray(np.divide(dcg, idcg, out=np.zeros(len(h)), where=idcg > 0), dtype=np.float64)


class MRR(Metric):
    label = "MRR"

    def per_user(self, ranked: np.ndarray, hits: np.ndarray, n_relevant: np.ndarray, ctx: MetricContext) -> np.ndarray:
        h = hits[:, : self.k]
        first = np.argmax(h, axis=1)
        return np.where(h.any(axis=1), 1.0 / (first + 1), 0.0)


class MAP(Metric):
    label = "MAP"

    def per_user(self, ranked: np.ndarray, hits: np.ndarray, n_relevant: np.ndarray, ctx: MetricContext) -> np.ndarray:
        h = hits[:, : self.k].astype(np.float64)
        precision_at = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
        denom = np.minimum(n_relevant, self.k).astype(np.float64)
        return np.divide((precision_at * h).sum(axis=1), denom, out=np.zeros(len(h)), where=denom > 0)


class Coverage(Metric):
    """Share of the rankable items that appear in at least one top-k list (a list-set metric)."""

    label = "Coverage"

    def per_user(self, ranked: np.ndarray, hits: np.ndarray, n_relevant: np.ndarray, ctx: MetricContext) -> None:
        return None

    def overall(self, ranked: np.ndarray, per_user: np.ndarray | None, ctx: MetricContext) -> float:
        head = ranked[:, : self.k]
        return len(np.unique(head[head >= 0])) / max(ctx.n_candidates, 1)


class Novelty(Metric):
    """Mean self-information -log2(p(item)) of the listed items, p = share of train users who have the
    item (add-one smoothed so unseen items are finite). Higher = less popular items."""

    label = "Novelty"

    def per_user(self, ranked: np.ndarray, hits: np.ndarray, n_relevant: np.ndarray, ctx: MetricContext) -> np.ndarray:
        head = ranked[:, : self.k]
        p = (ctx.item_popularity + 1.0) / (ctx.train.n_users + 1.0)
        info = -np.log2(p)
        vals = np.where(head >= 0, info[np.maximum(head, 0)], np.nan)
        with np.errstate(all="ignore"):
            return np.nan_to_num(np.nanmean(vals, axis=1), nan=0.0)


class IntraListDiversity(Metric):
    """Mean pairwise cosine distance between the items of a list (item genres, else train co-occurrence)."""

    label = "ILD"

    def per_user(self, ranked: np.ndarray, hits: np.ndarray, n_relevant: np.ndarray, ctx: MetricContext) -> np.ndarray:
        out = np.zeros(len(ranked))
        feats = ctx.item_features
        for r, row in enumerate(ranked[:, : self.k]):
            items = row[row >= 0]
            m = len(items)
            if m < 2:
                continue
            f = feats[items]
            sim = (f @ f.T).toarray()
            out[r] = 1.0 - (sim.sum() - np.trace(sim)) / (m * (m - 1))
        return out


_BY_LABEL: dict[str, type[Metric]] = {
    cls.label.lower(): cls
    for cls in (Recall, Precision, HitRate, NDCG, MRR, MAP, Coverage, Novelty, IntraListDiversity)
}


def parse_metric(text: str) -> Metric:
    """``"ndcg@10"`` -> ``NDCG(10)``. Labels: recall, precision, hitrate, ndcg, mrr, map, coverage,
    novelty, ild."""
    label, _, k = text.strip().partition("@")
    cls = _BY_LABEL.get(label.lower())
    if cls is None or not k.isdigit():
        raise ConfigError(
            f"Unknown metric {text!r}: write LABEL@K with LABEL one of {', '.join(sorted(_BY_LABEL))}, e.g. ndcg@10."
        )
    return cls(int(k))


def default_metrics() -> list[Metric]:
    """The metrics of the public protocol, plus the rest at 10."""
    return [
        Recall(10),
        Recall(20),
        NDCG(10),
        NDCG(20),
        HitRate(10),
        Precision(10),
        MRR(10),
        MAP(10),
        Coverage(10),
        Novelty(10),
        IntraListDiversity(10),
    ]
