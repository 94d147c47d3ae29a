"""Recommenders on MovieLens-100K: the quality order the design promises, and persistence on real data.

Protocol (as in DESIGN.md): per-user temporal split, the last 20% of each user's interactions are test
(users with >= 5), full ranking over all items with train items excluded, Recall@10. Groups: k-means on a
truncated SVD of the *train* matrix. Model settings are the defaults, chosen on a validation split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD

from personas.data import Dataset
from personas.holdout import recall_of_scores, temporal_holdout
from personas.recommend import (
    ALS,
    EASE,
    ColdStartRouter,
    ContentBased,
    GroupPopular,
    Hybrid,
    ItemKNN,
    MostPopular,
    Recommender,
)

pytestmark = pytest.mark.realdata

Split = tuple[Dataset, sp.csr_matrix, np.ndarray, np.ndarray]


def _groups(train: Dataset, k: int = 20) -> np.ndarray:
    x = train.matrix("binary")
    has = np.diff(x.indptr) > 0
    z = TruncatedSVD(32, random_state=0).fit_transform(x[has])
    z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-12
    labels = np.full(train.n_users, -1, dtype=np.int64)
    labels[has] = KMeans(k, n_init=4, random_state=0).fit_predict(z)
    return labels


@pytest.fixture(scope="module")
def warm(ml100k: Dataset) -> Split:
    keep = temporal_holdout(ml100k, 0.2)
    train = ml100k.subset_interactions(keep)
    truth = ml100k.subset_interactions(~keep).matrix("binary")
    rows = np.flatnonzero(np.diff(truth.indptr) > 0)
    return train, truth, rows, _groups(train)


def recall(model: Recommender, split: Split) -> float:
    train, truth, rows, _ = split
    scores = np.array(model.score_rows(rows), dtype=np.float64) + model.tie_break_
    scores[train.matrix("binary")[rows].nonzero()] = -np.inf
    return recall_of_scores(scores, truth[rows], 10)


@pytest.fixture(scope="module")
def popular_recall(warm: Split) -> float:
    return recall(MostPopular().fit(warm[0]), warm)


def test_group_popular_beats_most_popular(warm: Split, popular_recall: float) -> None:
    train, _, _, groups = warm
    grouped = recall(GroupPopular().fit(train, groups=groups), warm)
    # Measured: 0.102 vs 0.066; the groups explain a good part of behaviour.
    assert grouped > 1.3 * popular_recall


@pytest.mark.parametrize(("make", "floor"), [(EASE, 1.7), (ItemKNN, 1.6), (ALS, 1.5)])
def test_collaborative_models_beat_most_popular_clearly(
    make: type[Recommender], floor: float, warm: Split, popular_recall: float
) -> None:
    assert recall(make().fit(warm[0]), warm) > floor * popular_recall  # measured 1.79-1.91x


def test_hybrid_blends_on_validation_and_stays_near_ease(warm: Split, popular_recall: float) -> None:
    train, _, _, groups = warm
    hybrid = Hybrid().fit(train, groups=groups)
    assert sum(hybrid.weights.values()) == pytest.approx(1.0)
    assert 0 < hybrid.validation_recall_ < 1
    ease = recall(EASE().fit(train), warm)
    # Measured: 0.123 vs EASE 0.125 (the weights come from validation, where ItemKNN leads).
    assert recall(hybrid, warm) > 0.95 * ease > popular_recall


def test_router_gives_known_users_the_warm_model(warm: Split) -> None:
    """Every known user of the warm split has 16+ train items: their next items, checked inside fit on a temporal
    split of train, say the warm model alone serves them best, so none may get the few-shot blend."""
    train, _, rows, groups = warm
    router = ColdStartRouter().fit(train, groups=groups)
    assert router.switch_gains_[2].sum() >= router.config.switch_min_users  # known users were checked
    assert {router.why(int(r)) for r in rows} == {"warm"}
    # Measured: the blend's known-user gain at 10-19 items is negative (about -4 NDCG summed over users),
    # while the simulation of new users alone would have kept the blend up to 20 items.
    taken = router.popularity_ > 0  # items nobody took in train are scored by FeatureCF on every route
    ours, ease = router.score_rows(rows[:50]), router.warm_.score_rows(rows[:50])
    np.testing.assert_array_equal(ours[:, taken], ease[:, taken])


def test_router_beats_most_popular_for_few_shot_users(ml100k: Dataset) -> None:
    """Held-out users who revealed their first 3 items: the router's few-shot route vs popularity."""
    rng = np.random.default_rng(0)
    active = np.flatnonzero(np.bincount(ml100k.user_rows, minlength=ml100k.n_users) >= 10)
    held = np.sort(rng.choice(active, len(active) // 5, replace=False))
    order = np.lexsort((np.arange(ml100k.n_interactions), ml100k.timestamps, ml100k.user_rows))
    first = np.zeros(ml100k.n_interactions, dtype=bool)
    users = ml100k.user_rows[order]
    starts = np.searchsorted(users, np.arange(ml100k.n_users))
    position = np.arange(len(order)) - starts[users]
    first[order[position < 3]] = True
    test = np.isin(ml100k.user_rows, held) & ~first
    train = ml100k.subset_interactions(~test)
    truth = ml100k.subset_interactions(test).matrix("binary")
    split = (train, truth, held, _groups(train))
    router = ColdStartRouter().fit(train, groups=split[3])
    assert {router.why(int(r)) for r in held} == {"few"}
    # Measured: 0.086 vs 0.072 (1.19x); new users there rated popular films first, so the gain is modest.
    assert recall(router, split) > 1.1 * recall(MostPopular().fit(train), split)


def test_knowledge_graph_facts_become_item_tokens(ml100k: Dataset) -> None:
    with_kg = ContentBased(use_kg=True).fit(ml100k)
    terms = with_kg.terms_.tolist()
    assert any(t.startswith("actor_") for t in terms) and any(t.startswith("directed_by_") for t in terms)
    assert len(terms) > len(ContentBased(use_kg=False).fit(ml100k).terms_)


def test_ease_on_real_data_loads_back_bit_identical(warm: Split, tmp_path: Path) -> None:
    train, _, rows, _ = warm
    model = EASE().fit(train)
    loaded = Recommender.load(model.save(tmp_path / "ease"))
    users = list(train.user_vocab.ids[rows[:200]])
    a, b = model.recommend(users, n=20), loaded.recommend(users, n=20)
    assert np.array_equal(a.ids, b.ids) and np.array_equal(a.scores, b.scores)
