"""Each recommender against numbers worked out by hand or by an independent computation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

from personas.data import Dataset
from personas.errors import ConfigError
from personas.holdout import recall_of_scores, simplex_grid, temporal_holdout
from personas.recommend import (
    ALS,
    EASE,
    ContentBased,
    GroupPopular,
    Hybrid,
    ItemKNN,
    MostPopular,
    normalise_rows,
)
from personas.recommend.neighbours import top_k_per_row


def rows(ds: Dataset, *ids: str) -> np.ndarray:
    return ds.user_vocab.rows(list(ids))


def test_group_popular_shrinks_toward_global_by_hand(hand: Dataset) -> None:
    groups = np.array([0, 0, 1, -1])  # u1, u2 in group 0; u3 in group 1; u4 none
    model = GroupPopular(shrinkage=2.0).fit(hand, groups=groups)
    glob = np.array([2, 2, 2, 2]) / 4  # each item taken by 2 of 4 users
    # group 0 (2 users) took a: 2, b: 2, c: 1, d: 0 -> (count + 2 * 0.5) / (2 + 2)
    expected0 = (np.array([2, 2, 1, 0]) + 2 * glob) / 4
    expected1 = (np.array([0, 0, 1, 1]) + 2 * glob) / 3
    got = model.score_rows(rows(hand, "u1", "u3", "u4"))
    np.testing.assert_allclose(got[0], expected0)
    np.testing.assert_allclose(got[1], expected1)
    np.testing.assert_allclose(got[2], glob)


def test_group_popular_without_shrinkage_is_pure_group_popularity(synthetic: tuple[Dataset, np.ndarray]) -> None:
    dataset, labels = synthetic
    model = GroupPopular(shrinkage=0.0).fit(dataset, groups=labels)
    ids, _ = model.recommend(list(dataset.user_vocab.ids), n=3)
    item_block = np.array([int(i[1:]) // 10 for i in dataset.item_vocab.ids])
    assert (item_block[ids] == labels[:, None]).mean() > 0.95


def test_group_popular_places_a_new_user_by_history(synthetic: tuple[Dataset, np.ndarray]) -> None:
    dataset, labels = synthetic
    model = GroupPopular(shrinkage=1.0).fit(dataset, groups=labels)
    history = ["i20", "i21", "i22"]
    assert model.group_of_history(_history(dataset, history)) == 2
    rec = model.recommend_new(history=history, n=3)
    assert all(20 <= int(dataset.item_vocab.id(int(i))[1:]) < 30 for i in rec.ids[0])
    explicit = model.recommend_new(group=0, n=3)
    assert all(int(dataset.item_vocab.id(int(i))[1:]) < 10 for i in explicit.ids[0])


def _history(dataset: Dataset, items: list[str]) -> sp.csr_matrix:
    cols = dataset.item_vocab.rows(items)
    return sp.csr_matrix((np.ones(len(cols)), (np.zeros(len(cols), dtype=int), cols)), shape=(1, dataset.n_items))


def test_group_popular_without_groups_is_most_popular(synthetic: tuple[Dataset, np.ndarray]) -> None:
    dataset, _ = synthetic
    users = list(dataset.user_vocab.ids)
    a = GroupPopular().fit(dataset).recommend(users, n=5)
    b = MostPopular().fit(dataset).recommend(users, n=5)
    assert np.array_equal(a.ids, b.ids)


def test_item_knn_cosine_by_hand(hand: Dataset) -> None:
    model = ItemKNN(k=10).fit(hand)
    sim = model.similarity_.toarray()
    a, b, c, d = hand.item_vocab.rows(["a", "b", "c", "d"])
    # a and b: both taken by u1, u2 -> 2 / sqrt(2 * 2) = 1; a and c: u2 -> 1 / sqrt(2 * 2); c and d: u3 -> 1/2
    assert sim[a, b] == pytest.approx(1.0)
    assert sim[a, c] == pytest.approx(0.5)
    assert sim[c, d] == pytest.approx(0.5)
    assert sim[a, d] == 0.0 and np.all(np.diag(sim) == 0)
    # u4 took d: score of c = sim[d, c] = 0.5, of a and b = 0
    scores = model.score_rows(rows(hand, "u4"))[0]
    np.testing.assert_allclose(scores[[a, b, c]], [0.0, 0.0, 0.5])


def test_top_k_per_row_keeps_the_largest() -> None:
    m = sp.csr_matrix(np.array([[0.0, 3.0, 1.0, 2.0], [5.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]]))
    out = top_k_per_row(m, 2).toarray()
    np.testing.assert_array_equal(out, [[0, 3, 0, 2], [5, 0, 0, 0], [1, 1, 0, 0]])


def test_item_knn_k_limits_neighbours(synthetic: tuple[Dataset, np.ndarray]) -> None:
    dataset, _ = synthetic
    model = ItemKNN(k=3).fit(dataset)
    assert np.diff(model.similarity_.indptr).max() <= 3


def test_ease_equals_per_item_ridge_regression(synthetic: tuple[Dataset, np.ndarray]) -> None:
    """With diag(B) = 0 the EASE objective splits into one ridge regression per item on the others."""
    dataset, _ = synthetic
    l2 = 5.0
    model = EASE(l2=l2, dtype="float64").fit(dataset)
    x = dataset.matrix("binary").toarray()
    for j in (0, 7, 29):
        others = np.delete(np.arange(x.shape[1]), j)
        xo = x[:, others]
        coef = np.linalg.solve(xo.T @ xo + l2 * np.eye(len(others)), xo.T @ x[:, j])
        np.testing.assert_allclose(model.weights_[others, j], coef, atol=1e-10)
        assert model.weights_[j, j] == 0.0


def test_ease_float32_matches_float64_and_numpy_inverse(synthetic: tuple[Dataset, np.ndarray]) -> None:
    """The fast float32 inversion gives the weights of the plain float64 numpy formula within float tolerance,
    and the same top-10 lists."""
    dataset, _ = synthetic
    x = dataset.matrix("binary").toarray()
    inverse = np.linalg.inv(x.T @ x + 30.0 * np.eye(x.shape[1]))
    reference = inverse / -np.diag(inverse)
    np.fill_diagonal(reference, 0.0)
    fast = EASE(l2=30.0).fit(dataset)
    assert fast.weights_.dtype == np.float32
    np.testing.assert_allclose(fast.weights_, reference, atol=1e-6 * np.abs(reference).max())
    exact = EASE(l2=30.0, dtype="float64").fit(dataset)
    np.testing.assert_allclose(exact.weights_, reference, atol=1e-12)
    users = dataset.user_vocab.ids[:20].tolist()
    np.testing.assert_array_equal(fast.recommend(users, 10).ids, exact.recommend(users, 10).ids)


def test_als_fold_in_matches_implicit_exact_solver(synthetic: tuple[Dataset, np.ndarray]) -> None:
    dataset, _ = synthetic
    model = ALS(factors=8, iterations=5, regularization=0.1, alpha=2.0, seed=0).fit(dataset)
    history = dataset.matrix("binary")[3]
    ours = model.fold_in(history.indices)
    reference = AlternatingLeastSquares(factors=8, regularization=0.1, alpha=2.0, use_cg=False, num_threads=1)
    reference.item_factors = model.item_factors_.copy()
    reference.user_factors = model.user_factors_.copy()
    theirs = reference.recalculate_user(0, history.astype(np.float32))
    np.testing.assert_allclose(ours, np.asarray(theirs).ravel(), rtol=1e-3, atol=1e-4)


def test_als_is_seeded(synthetic: tuple[Dataset, np.ndarray]) -> None:
    dataset, _ = synthetic
    a = ALS(factors=8, iterations=3, seed=1).fit(dataset).user_factors_
    b = ALS(factors=8, iterations=3, seed=1).fit(dataset).user_factors_
    c = ALS(factors=8, iterations=3, seed=2).fit(dataset).user_factors_
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def _films(build: Callable[..., Dataset]) -> Dataset:
    items = pd.DataFrame(
        {
            "item_id": ["sw", "al", "nh", "am"],
            "title": ["Star Wars", "Alien", "Notting Hill", "Amelie"],
            "genres": ["Sci-Fi Space", "Sci-Fi Horror", "Romance Comedy", "Romance Comedy"],
        }
    )
    return build([("u1", "sw"), ("u2", "nh"), ("u3", "am")], items=items)


def test_content_text_and_history(build: Callable[..., Dataset]) -> None:
    dataset = _films(build)
    model = ContentBased(min_df=1).fit(dataset)
    assert model.uses_text
    by_text = model.recommend_new(text="a space opera with sci-fi battles", n=2)
    assert [dataset.item_vocab.id(int(i)) for i in by_text.ids[0]] == ["sw", "al"]
    ids, _ = model.recommend(["u2"], n=1)
    assert dataset.item_vocab.id(int(ids[0, 0])) == "am"  # the other romance comedy


def test_content_with_given_vectors(build: Callable[..., Dataset]) -> None:
    dataset = _films(build)
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    order = dataset.item_vocab.rows(["sw", "al", "nh", "am"])
    item_vectors = np.empty_like(vectors)
    item_vectors[order] = vectors
    model = ContentBased().fit(dataset, item_vectors=item_vectors)
    rec = model.recommend_new(vector=np.array([0.2, 1.0]), n=2)
    # cosine to (0.2, 1): am (0.1, 0.9) 0.99, nh (0, 1) 0.98
    assert [dataset.item_vocab.id(int(i)) for i in rec.ids[0]] == ["am", "nh"]
    with pytest.raises(ConfigError, match="pass the user's vector"):
        model.recommend_new(text="romance", n=1)
    with pytest.raises(ConfigError, match="must have 2 values"):
        model.recommend_new(vector=np.ones(3), n=1)


def test_normalise_rows() -> None:
    out = normalise_rows(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    np.testing.assert_allclose(out[0], [-1.224744871, 0.0, 1.224744871])
    np.testing.assert_array_equal(out[1], [0.0, 0.0, 0.0])


def test_temporal_holdout_by_hand(build: Callable[..., Dataset]) -> None:
    pairs = [("u1", f"i{k}") for k in range(10)] + [("u2", "i0"), ("u2", "i1")]
    dataset = build(pairs)
    keep = temporal_holdout(dataset, 0.2, min_interactions=5)
    # u1: the last 2 of 10 by time are held out; u2 has too few to lose any
    assert keep.tolist() == [True] * 8 + [False, False] + [True, True]


def test_simplex_grid_and_recall() -> None:
    grid = simplex_grid(3, 0.5)
    assert sorted(map(tuple, grid.tolist())) == sorted(
        [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)]
    )
    scores = np.array([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    relevant = np.array([[1, 0, 0, 1], [0, 0, 0, 0]])
    assert recall_of_scores(scores, relevant, 2) == pytest.approx(0.5)  # the second row has no relevant items


def test_hybrid_with_fixed_weights_is_the_weighted_blend(synthetic: tuple[Dataset, np.ndarray]) -> None:
    dataset, labels = synthetic
    hybrid = Hybrid(content=None, item_knn=None, weights={"group_popular": 0.25, "ease": 0.75}).fit(
        dataset, groups=labels
    )
    user_rows = np.arange(5)
    gp = GroupPopular().fit(dataset, groups=labels).score_rows(user_rows)
    ease = EASE().fit(dataset).score_rows(user_rows)
    np.testing.assert_allclose(hybrid.score_rows(user_rows), 0.25 * normalise_rows(gp) + 0.75 * normalise_rows(ease))


def test_hybrid_tunes_weights_on_validation(synthetic: tuple[Dataset, np.ndarray]) -> None:
    dataset, labels = synthetic
    shuffled = np.random.default_rng(0).permutation(labels)  # groups that mean nothing
    hybrid = Hybrid(content=None, ease=None, grid_step=0.5).fit(dataset, groups=shuffled)
    assert set(hybrid.weights) == {"group_popular", "item_knn"}
    assert hybrid.weights["item_knn"] >= 0.5 > 0 <= hybrid.weights["group_popular"]
    assert 0.0 <= hybrid.validation_recall_ <= 1.0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ItemKNN(k=0), "The 'k' parameter of ItemKNN must be an int >= 1. Got 0 instead."),
        (lambda: EASE(l2=0), "The 'l2' parameter of EASE must be a float > 0. Got 0.0 instead."),
        (lambda: GroupPopular(shrinkage=-1), "'shrinkage' parameter of GroupPopular"),
        (lambda: ALS(factors=0), "'factors' parameter of ALS"),
        (lambda: Hybrid(weights={"ease": 1.0}), "'weights' parameter of Hybrid"),
        (lambda: Hybrid(group_popular=None, item_knn=None, ease=None, content=None), "at least one component"),
    ],
)
def test_bad_parameters_use_the_error_template(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        make()


def test_config_and_keywords_are_exclusive() -> None:
    with pytest.raises(ConfigError, match="not both"):
        EASE(EASE.Config(), l2=3.0)
    with pytest.raises(ConfigError, match="takes a EASEConfig"):
        EASE(ItemKNN.Config())


def test_ease_items_nobody_took_get_zero_weights(build: Callable[..., Dataset]) -> None:
    pairs = [("u1", "a"), ("u1", "b"), ("u2", "b"), ("u2", "c"), ("u3", "a"), ("u3", "c")]
    items = pd.DataFrame({"item_id": ["a", "b", "c", "z"], "title": ["A", "B", "C", "Z"]})
    with_unused = EASE(l2=2.0).fit(build(pairs, items=items))
    without = EASE(l2=2.0).fit(build(pairs))
    z = with_unused.item_vocab_.row("z")
    assert not with_unused.weights_[z].any() and not with_unused.weights_[:, z].any()
    keep = with_unused.item_vocab_.rows(["a", "b", "c"])
    order = without.item_vocab_.rows(["a", "b", "c"])
    np.testing.assert_allclose(with_unused.weights_[np.ix_(keep, keep)], without.weights_[np.ix_(order, order)])


def test_a_model_saved_in_an_older_format_is_refused_with_what_to_do(hand: Dataset, tmp_path: Path) -> None:
    import json

    from personas.errors import DataError
    from personas.recommend import MostPopular, Recommender

    folder = MostPopular().fit(hand).save(tmp_path / "model")
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["meta"]["format"]  # as written before the format was versioned
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"saved in model format 1.*Fit and save the model again"):
        Recommender.load(folder)


def test_fit_inputs_of_the_wrong_shape_are_refused_naming_them(hand: Dataset) -> None:
    from personas.errors import DataError
    from personas.recommend import ColdStartRouter, ContentBased

    with pytest.raises(DataError, match=r"item_vectors must have one row per item \(4\); got shape \(3, 2\)"):
        ContentBased().fit(hand, item_vectors=np.ones((3, 2)))
    with pytest.raises(DataError, match=r"user_vectors must have one row per user \(4\); got shape \(4,\)"):
        ColdStartRouter().fit(hand, user_vectors=np.ones(4))
    with pytest.raises(DataError, match=r"centroids must be \(groups x d\) like user_vectors"):
        ColdStartRouter().fit(hand, user_vectors=np.ones((4, 2)), centroids=np.ones((2, 3)))
