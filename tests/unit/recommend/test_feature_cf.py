"""FeatureCF: ridge from item features to every user's row; new items are ranked by their features."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset
from personas.errors import ConfigError, DataError
from personas.recommend import (
    EASE,
    ColdStartRouter,
    FeatureCF,
    Hybrid,
    Recommender,
    fill_cold_items,
    item_feature_blocks,
)

GENRES = ["Horror", "Romance", "Western"]


@pytest.fixture(scope="module")
def catalogue() -> Dataset:
    """30 users in three tastes over 24 items (8 per genre); items h7, r7, w7 nobody took (new releases)."""
    pairs = []
    rng = np.random.default_rng(5)
    for u in range(30):
        g = u % 3
        for i in rng.choice(7, size=5, replace=False):
            pairs.append((f"u{u:02d}", f"{GENRES[g][0].lower()}{int(i)}"))
    inter = pd.DataFrame(pairs, columns=["user_id", "item_id"])
    inter["timestamp"] = np.arange(len(inter))
    ids = [f"{g[0].lower()}{i}" for g in GENRES for i in range(8)]
    items = pd.DataFrame(
        {
            "item_id": ids,
            "title": [f"Film {i}" for i in ids],
            "genres": [g for g in GENRES for _ in range(8)],
            "release_year": [1990 + i for _ in GENRES for i in range(8)],
        }
    )
    return Dataset.from_frames(inter, items=items, name="catalogue")


def test_new_items_are_ranked_by_the_users_taste(catalogue: Dataset) -> None:
    model = FeatureCF(l2=1.0).fit(catalogue)
    new = catalogue.item_vocab.rows(["h7", "r7", "w7"])
    assert (model.popularity_[new] == 0).all()
    scores = model.score_rows(catalogue.user_vocab.rows(["u00", "u01", "u02"]))[:, new]
    np.testing.assert_array_equal(scores.argmax(axis=1), [0, 1, 2])  # horror, romance, western fans


def test_closed_form_is_the_ridge_regression_of_each_row_on_taken_items(catalogue: Dataset) -> None:
    l2 = 2.0
    model = FeatureCF(l2=l2).fit(catalogue)
    features = item_feature_blocks(catalogue, model.config).toarray()
    taken = model.popularity_ > 0
    x = catalogue.matrix("binary").toarray()
    f = features[taken]
    coef = np.linalg.solve(f.T @ f + l2 * np.eye(f.shape[1]), f.T @ x[:, taken].T).T  # users x features
    np.testing.assert_allclose(model.score_rows(np.arange(catalogue.n_users)), coef @ features.T, atol=1e-10)


def test_feature_blocks_read_genres_years_and_given_vectors(catalogue: Dataset) -> None:
    base = item_feature_blocks(catalogue, FeatureCF.Config())
    # 3 genres + 8 years + 1 decade + the constant
    assert base.shape == (24, 3 + 8 + 1 + 1)
    vectors = np.random.default_rng(0).normal(size=(24, 4))
    assert item_feature_blocks(catalogue, FeatureCF.Config(), vectors).shape[1] == base.shape[1] + 4
    assert item_feature_blocks(catalogue, FeatureCF.Config(year=0.0, decade=0.0, constant=0.0)).shape[1] == 3


def test_year_in_the_title_is_used_when_no_year_column(build: Callable[..., Dataset]) -> None:
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["Heat (1995)", "Alien (1979)"]})
    dataset = build([("u1", "a"), ("u2", "b")], items=items)
    blocks = item_feature_blocks(dataset, FeatureCF.Config(genres=0.0, constant=0.0))
    assert blocks.shape == (2, 4)  # two years, two decades


def test_bad_input(catalogue: Dataset) -> None:
    with pytest.raises(ConfigError, match=r"The .l2. parameter of FeatureCF must be a float > 0\. Got 0\.0 instead\."):
        FeatureCF(l2=0.0)
    with pytest.raises(DataError, match="one row per item"):
        FeatureCF().fit(catalogue, item_vectors=np.zeros((3, 2)))


@pytest.mark.parametrize("make", [lambda: Hybrid(weights=None, grid_step=0.5), lambda: ColdStartRouter(min_history=2)])
def test_hybrid_and_router_score_new_items_through_features(
    make: Callable[[], Recommender], catalogue: Dataset, tmp_path: Path
) -> None:
    """EASE alone cannot tell new items apart; the blends rank them by the user's taste."""
    model = make().fit(catalogue)
    new = catalogue.item_vocab.rows(["h7", "r7", "w7"])
    users = catalogue.user_vocab.rows(["u00", "u01", "u02"])
    np.testing.assert_array_equal(model.score_rows(users)[:, new].argmax(axis=1), [0, 1, 2])
    ease = EASE().fit(catalogue).score_rows(users)[:, new]
    assert np.ptp(ease) == 0.0
    by_history = model.recommend_new(history=["h0", "h1", "h2", "h3", "h4", "h5"], n=24).ids[0].tolist()
    new_rank = [by_history.index(int(r)) for r in new]
    assert new_rank[0] < min(new_rank[1:])
    loaded = Recommender.load(model.save(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.score_rows(users), model.score_rows(users))


def test_fill_scale_sets_how_far_new_items_climb(catalogue: Dataset) -> None:
    """Scale 1 puts new items on the fitted line (the horror fan's new horror film near the top); scale 0 keeps
    every new item at the user's average, still ordered among themselves by taste."""
    model = FeatureCF().fit(catalogue)
    users = catalogue.user_vocab.rows(["u00"])  # a horror fan
    history = catalogue.matrix("binary")[users]
    base = EASE().fit(catalogue).score_rows(users)
    new = catalogue.item_vocab.rows(["h7", "r7", "w7"])
    taken = np.setdiff1d(np.arange(catalogue.n_items), new)
    full, flat = (fill_cold_items(base, model, history, scale=s) for s in (1.0, 0.0))
    np.testing.assert_array_equal(full[:, taken], base[:, taken])  # only new items change
    average = base[0, taken].mean()
    assert full[0, new[0]] > average + 0.5 * (base[0, taken].max() - average)
    np.testing.assert_allclose(flat[0, new], average, atol=1e-3)
    assert flat[0, new[0]] == flat[0, new].max()


@pytest.fixture(scope="module")
def releases(catalogue: Dataset) -> Dataset:
    """60 users in three tastes; every horror and romance fan took their genre's new release (h7, r7) last,
    nobody took w7 (so the data have a new item, and the fill exists)."""
    rng = np.random.default_rng(3)
    rows = []
    for u in range(60):
        genre = GENRES[u % 3][0].lower()
        rows += [(f"u{u:02d}", f"{genre}{int(i)}", t) for t, i in enumerate(rng.choice(7, size=5, replace=False))]
        if genre != "w":
            rows.append((f"u{u:02d}", f"{genre}7", 100))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Dataset.from_frames(inter, items=catalogue.items, name="releases")


def test_router_chooses_the_fill_scale_on_known_users(releases: Dataset) -> None:
    """On the router's known-user split the releases are new and in the fans' truth, so lifting new items by
    taste (scale 1) beats keeping them at the average (scale 0, the first candidate, which would win a tie)."""
    settings = {"min_history": 2, "switch_min_truth": 1, "cold_item_scales": (0.0, 1.0)}
    tuned = ColdStartRouter(**settings).fit(releases)
    scales, ndcg = tuned.cold_item_scale_trials_
    assert scales.tolist() == [0.0, 1.0] and ndcg[1] > ndcg[0]
    assert tuned.cold_item_scale_ == 1.0
    fixed = ColdStartRouter(**settings, tune_cold_item_scale=False).fit(releases)
    assert fixed.cold_item_scale_ == 0.0 and fixed.cold_item_scale_trials_.shape == (2, 0)


def test_hybrid_chooses_the_fill_scale_with_its_weights(releases: Dataset, tmp_path: Path) -> None:
    # On this small catalogue the scales can tie (items of other tastes score below a fan's average, so even
    # scale 0 ranks a fan's release 4th); the rule is checked: the first of the best trials is kept, and saved.
    hybrid = Hybrid(grid_step=0.5, k=3, cold_item_scales=(0.5, 1.0, 0.0)).fit(releases)
    scales, recall = hybrid.cold_item_scale_trials_
    assert scales.tolist() == [0.5, 1.0, 0.0] and len(recall) == 3
    assert hybrid.cold_item_scale_ == scales[int(np.argmax(recall > recall.max() - 1e-9))]
    loaded = Recommender.load(hybrid.save(tmp_path / "hybrid"))
    assert loaded.cold_item_scale_ == hybrid.cold_item_scale_  # type: ignore[attr-defined]
    fixed = Hybrid(grid_step=0.5, cold_item_scales=(0.25, 1.0), tune_cold_item_scale=False).fit(releases)
    assert fixed.cold_item_scale_ == 0.25 and fixed.cold_item_scale_trials_.shape == (2, 0)


def test_item_texts_are_a_feature_block_only_when_weighted(catalogue: Dataset) -> None:
    """Without genres, a new item's text vector (its genre's axis) is what places it."""
    taste = np.array([i[0] for i in catalogue.item_vocab.ids])
    texts = np.column_stack([taste == "h", taste == "r", taste == "w"]).astype(np.float64)
    base = item_feature_blocks(catalogue, FeatureCF.Config())
    assert item_feature_blocks(catalogue, FeatureCF.Config(), None, texts).shape[1] == base.shape[1] + 3
    assert item_feature_blocks(catalogue, FeatureCF.Config(text_vectors=0.0), None, texts).shape == base.shape
    blind = FeatureCF.Config(genres=0.0, year=0.0, decade=0.0, l2=1.0)
    assert item_feature_blocks(catalogue, blind.model_copy(update={"text_vectors": 1.0}), None, texts).shape[1] == 4
    model = FeatureCF(blind.model_copy(update={"text_vectors": 1.0})).fit(catalogue, item_text_vectors=texts)
    new = catalogue.item_vocab.rows(["h7", "r7", "w7"])
    scores = model.score_rows(catalogue.user_vocab.rows(["u00", "u01", "u02"]))[:, new]
    np.testing.assert_array_equal(scores.argmax(axis=1), [0, 1, 2])
