"""Group discovery and persona cards on real data: MovieLens-100K profiles and UCI drug reviews."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from personas.data import Dataset, build_profiles
from personas.describe import describe_groups
from personas.discover import (
    AgglomerativeGroups,
    HDBSCANGroups,
    KMeansGroups,
    LeidenGroups,
    choose_k,
    group_quality,
    stability,
)
from personas.encode import TfidfEncoder

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def profiles(ml100k: Dataset) -> tuple[list[str], np.ndarray]:
    texts = build_profiles(ml100k)
    return texts, TfidfEncoder(128).fit(texts).encode(texts)


@pytest.fixture(scope="module")
def kmeans8(profiles: tuple[list[str], np.ndarray]) -> KMeansGroups:
    return KMeansGroups(k=8).fit(profiles[1])


def test_choose_k_on_ml100k_reports_every_candidate(profiles):
    _, x = profiles
    choice = choose_k(x, [2, 4, 8], n_runs=2)
    assert [s.k for s in choice.scores] == [2, 4, 8]
    assert choice.k in (2, 4, 8)
    for s in choice.scores:
        # taste is a continuum: positive but small silhouettes, and objectives that fall with k
        assert 0.0 < s.silhouette < 0.5
        assert 0.0 <= s.stability <= 1.0
    assert choice.scores[0].inertia > choice.scores[-1].inertia
    assert choice.scores[0].stability > 0.8  # two broad tastes come back under any seed


def _genre_lift(dataset: Dataset, labels: np.ndarray, genre: str) -> np.ndarray:
    """For each group: share of its members' likes (rating >= 4) in ``genre`` / that share over everyone."""
    liked = dataset.ratings >= 4
    items, groups = dataset.item_rows[liked], labels[dataset.user_rows[liked]]
    genres = dataset.items["genres"].fillna("").to_numpy()
    has = np.array([genre in genres[i] for i in items])
    return np.array([has[groups == g].mean() for g in range(labels.max() + 1)]) / has.mean()


def test_ml100k_personas_visibly_differ(ml100k, profiles, kmeans8):
    texts, x = profiles
    personas = describe_groups(kmeans8.labels_, texts=texts, vectors=x, dataset=ml100k)
    assert len(personas) == 8
    assert sum(p.size for p in personas) == ml100k.n_users
    tops = [{k.term for k in p.keywords[:5]} for p in personas]
    for a, b in itertools.combinations(tops, 2):
        assert len(a & b) / len(a | b) <= 0.5
    assert len({p.name for p in personas}) == 8
    name_terms = [t for p in personas for t in p.name.split(" · ")]
    assert len(name_terms) == len(set(name_terms))  # no name reuses a term of another
    items = [{i.item_id for i in p.distinctive_items} for p in personas]
    for a, b in itertools.combinations(items, 2):
        assert len(a & b) <= 1
    for p in personas:
        assert p.distinctive_items and all(i.lift > 1 and i.users >= 5 for i in p.distinctive_items)
        # ml-100k users wrote nothing: no quote (never a generated "liked: ..." fragment)
        assert p.representatives and all(r.quote == "" for r in p.representatives)
        assert all(s.lift >= 1.2 for s in p.attribute_skew)
    # tastes differ: an action group that likes drama less than average, and a film-noir group that
    # likes action less than average
    action, drama, noir = (_genre_lift(ml100k, kmeans8.labels_, g) for g in ("Action", "Drama", "Film-Noir"))
    a, n = int(np.argmax(action)), int(np.argmax(noir))
    assert a != n
    assert action[a] >= 1.3 and drama[a] < 1.0
    assert noir[n] >= 1.3 and action[n] < 1.0


def test_groups_carry_a_weak_but_real_signal_about_age_and_gender(ml100k, kmeans8):
    """Weak labels: NMI is small (~0.01-0.03), but above every one of 20 label permutations (p < 0.05)."""
    from personas.describe import age_band

    labels = kmeans8.labels_
    for truth in (
        age_band(ml100k.users["age"], (18, 25, 35, 45, 55)).astype(str).to_numpy(),
        ml100k.users["gender"].astype(str).to_numpy(),
    ):
        real = normalized_mutual_info_score(truth, labels)
        shuffled = [
            normalized_mutual_info_score(truth, np.random.default_rng(s).permutation(labels)) for s in range(20)
        ]
        assert max(shuffled) < real < 0.1


def test_every_method_groups_ml100k_and_assigns_held_out_users(profiles):
    _, x = profiles
    rng = np.random.default_rng(0)
    held = rng.choice(len(x), 90, replace=False)
    train = np.setdiff1d(np.arange(len(x)), held)
    for finder in (
        KMeansGroups(k=6),
        AgglomerativeGroups(k=6, linkage="ward"),
        HDBSCANGroups(min_group_size=10, noise="nearest"),
        LeidenGroups(n_neighbors=15),
    ):
        finder.fit(x[train])
        assert finder.n_groups_ >= 2, finder
        new = finder.assign(x[held])
        assert new.shape == (90,)
        assert (new >= 0).mean() > 0.8, finder
        quality = group_quality(x[train], finder.labels_)
        assert quality.silhouette is None or quality.silhouette > -0.1


def test_kmeans_on_ml100k_is_stable_under_subsampling(profiles):
    _, x = profiles
    result = stability(KMeansGroups(k=3), x, n_runs=3, mode="subsample")
    assert result.mean_ari > 0.6


def _bench():
    path = Path(__file__).parents[2] / "bench" / "discover.py"
    spec = importlib.util.spec_from_file_location("bench_discover", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_drug_review_groups_recover_conditions_better_than_chance():
    reviews = _bench().load_drug_reviews()
    conditions = reviews["condition"].to_numpy()
    assert len(reviews) > 400
    assert reviews["condition"].nunique() == 10
    texts = reviews["review"].tolist()
    x = TfidfEncoder(128).fit(texts).encode(texts)
    labels = KMeansGroups(k=10).fit(x).labels_
    q = group_quality(x, labels, conditions)
    chance = group_quality(x, np.random.default_rng(0).permutation(labels), conditions)
    assert q.nmi > 0.15
    assert q.nmi > 3 * chance.nmi
