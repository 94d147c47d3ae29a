"""How many fine personas to recommend from: the number of groups whose group-popular recommendations score best
on a validation hold-out.

The last ``fraction`` of each user's history (by time, then file order; users with at least
``min_interactions``) is held out; groups are found on vectors made from the rest only (the caller encodes the
train part, so no held-out item reaches the groups); for each candidate k the groups' own popular items
(:class:`~personas.recommend.GroupPopular`) rank every unseen item, scored by NDCG@n against the held-out items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel

from personas.data import Dataset
from personas.errors import ConfigError
from personas.holdout import ndcg_of_scores, temporal_holdout
from personas.recommend import GroupPopular

__all__ = ["FineKChoice", "FineKScore", "choose_fine_k", "validation_split"]


class FineKScore(BaseModel):
    k: int
    n_groups: int
    ndcg: float


class FineKChoice(BaseModel):
    """The chosen k, the rule, the protocol in words, and every candidate's validation NDCG."""

    k: int
    rule: str
    protocol: str
    metric: str
    scores: list[FineKScore]


def validation_split(
    dataset: Dataset, *, fraction: float = 0.2, min_interactions: int = 5
) -> tuple[Dataset, sp.csr_matrix]:
    """The train part (same users and items, the held-out interactions removed) and the held-out items as a
    binary users x items matrix."""
    keep = temporal_holdout(dataset, fraction, min_interactions=min_interactions)
    held = ~keep
    relevant = sp.csr_matrix(
        (np.ones(int(held.sum())), (dataset.user_rows[held], dataset.item_rows[held])),
        shape=(dataset.n_users, dataset.n_items),
    )
    relevant.data[:] = 1.0  # an item taken twice is one relevant item
    return dataset.subset_interactions(keep, name=f"{dataset.name} (validation train)"), relevant


def choose_fine_k(
    train: Dataset,
    relevant: sp.csr_matrix,
    labels_for: Callable[[int], np.ndarray],
    candidates: Iterable[int],
    *,
    n: int = 10,
    tolerance: float = 0.01,
    protocol: str = "",
) -> FineKChoice:
    """Score each candidate k by the validation NDCG@``n`` of group-popular recommendations from the groups
    ``labels_for(k)`` (one label per user of ``train``); pick the fewest groups within ``tolerance`` (relative)
    of the best: more groups than that only split the data thinner."""
    ks = sorted({int(k) for k in candidates})
    if not ks or ks[0] < 2:
        raise ConfigError(f"The 'candidates' of choose_fine_k must be ints >= 2. Got {ks} instead.")
    relevant = sp.csr_matrix(relevant)
    rows = np.flatnonzero(np.diff(relevant.indptr) > 0)
    if len(rows) == 0:
        raise ConfigError(
            "choose_fine_k: no user has held-out interactions (each needs at least min_interactions); "
            'give [discover] k as a number instead of "auto".'
        )
    seen = train.matrix("binary").tocsr()[rows]
    scores = []
    for k in ks:
        labels = np.asarray(labels_for(k), dtype=np.int64)
        model = GroupPopular().fit(train, groups=labels)
        block = np.asarray(model.score_rows(rows), dtype=np.float64)
        block[seen.nonzero()] = -np.inf  # what a user took in train is never recommended again
        n_groups = int(labels.max()) + 1 if (labels >= 0).any() else 0
        scores.append(FineKScore(k=k, n_groups=n_groups, ndcg=ndcg_of_scores(block, relevant[rows], n)))
    top = max(s.ndcg for s in scores)
    best = min((s for s in scores if s.ndcg >= top - tolerance * abs(top)), key=lambda s: s.k)
    return FineKChoice(
        k=best.k,
        rule=f"fewest groups whose validation NDCG@{n} is within {tolerance:.0%} of the best ({top:.4f})",
        protocol=protocol or f"{len(rows)} users' last interactions held out",
        metric=f"NDCG@{n} of group-popular",
        scores=scores,
    )
