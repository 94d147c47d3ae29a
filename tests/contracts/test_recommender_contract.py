"""The contract every recommender keeps, checked on the checkerboard (see conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset
from personas.errors import ConfigError, DataError, NotFittedError
from personas.recommend import Recommender

from .conftest import fit

Board = tuple[Dataset, np.ndarray, dict[str, str]]


def test_shapes_and_types(fitted: Recommender, board: Board) -> None:
    dataset, _, _ = board
    users = list(dataset.user_vocab.ids[:3])
    ids, scores = fitted.recommend(users, n=2)
    assert ids.shape == (3, 2) and scores.shape == (3, 2)
    assert ids.dtype == np.int64 and scores.dtype == np.float64
    assert ((ids >= 0) & (ids < dataset.n_items)).all()


def test_known_answer_first(fitted: Recommender, board: Board, knows_answer: bool) -> None:
    if not knows_answer:
        pytest.skip("every item is equally popular on the board: no right answer for this model")
    dataset, _, answer = board
    users = list(answer)
    ids, _ = fitted.recommend(users, n=1)
    got = [dataset.item_vocab.id(int(i)) for i in ids[:, 0]]
    assert got == [answer[u] for u in users]


def test_seen_items_excluded_unless_asked(fitted: Recommender, board: Board) -> None:
    dataset, _, _ = board
    seen = dataset.matrix("binary")
    users = list(dataset.user_vocab.ids)
    ids, _ = fitted.recommend(users, n=dataset.n_items)
    for row, recs in enumerate(ids):
        valid = recs[recs >= 0]
        assert not set(valid.tolist()) & set(seen[row].indices.tolist())
        assert len(valid) == dataset.n_items - seen[row].nnz
    ids_all, _ = fitted.recommend(users, n=dataset.n_items, exclude_seen=False)
    assert (ids_all >= 0).all()
    assert all(len(set(r.tolist())) == dataset.n_items for r in ids_all)


def test_scores_sorted_and_ids_unique(fitted: Recommender, board: Board) -> None:
    dataset, _, _ = board
    ids, scores = fitted.recommend(list(dataset.user_vocab.ids), n=4)
    assert (np.diff(scores, axis=1) <= 0).all()
    for recs in ids:
        valid = recs[recs >= 0]
        assert len(set(valid.tolist())) == len(valid)


def test_deterministic_and_batch_independent(factory, board: Board, fitted: Recommender) -> None:  # type: ignore[no-untyped-def]
    dataset, _, _ = board
    users = list(dataset.user_vocab.ids)
    first = fitted.recommend(users, n=3)
    again = fit(factory(), board).recommend(users, n=3)
    assert np.array_equal(first.ids, again.ids) and np.array_equal(first.scores, again.scores)
    alone = fitted.recommend([users[5]], n=3)
    assert np.array_equal(alone.ids[0], first.ids[5])
    np.testing.assert_allclose(alone.scores[0], first.scores[5])


def test_unknown_users_get_the_fallback_and_are_reported(fitted: Recommender, board: Board) -> None:
    dataset, _, _ = board
    known = dataset.user_vocab.ids[0]
    rec = fitted.recommend(["nobody", known, "ghost"], n=3)
    assert rec.unknown == ["nobody", "ghost"]
    assert rec.ids.shape == (3, 3)
    expected = np.argsort(-(fitted.fallback_scores(1)[0] + fitted.tie_break_), kind="stable")[:3]
    assert rec.ids[0].tolist() == expected.tolist() == rec.ids[2].tolist()
    assert np.array_equal(rec.ids[1], fitted.recommend([known], n=3).ids[0])


def test_n_larger_than_catalogue_pads(fitted: Recommender, board: Board) -> None:
    dataset, _, _ = board
    user = dataset.user_vocab.ids[0]
    ids, scores = fitted.recommend([user], n=dataset.n_items + 5)
    n_valid = dataset.n_items - dataset.matrix("binary")[0].nnz
    assert ids.shape == (1, dataset.n_items + 5)
    assert (ids[0, :n_valid] >= 0).all() and (ids[0, n_valid:] == -1).all()
    assert np.isfinite(scores[0, :n_valid]).all() and np.isneginf(scores[0, n_valid:]).all()


@pytest.mark.parametrize("bad_n", [0, -1, 2.5, True])
def test_bad_n_is_a_config_error(fitted: Recommender, bad_n: object) -> None:
    with pytest.raises(ConfigError, match="'n' parameter"):
        fitted.recommend(["a0"], n=bad_n)  # type: ignore[arg-type]


def test_empty_dataset_is_a_data_error(factory) -> None:  # type: ignore[no-untyped-def]
    empty = Dataset.from_frames(
        pd.DataFrame({"user_id": pd.Series([], dtype=str), "item_id": pd.Series([], dtype=str)}),
        items=pd.DataFrame({"item_id": ["x", "y"], "title": ["X", "Y"]}),
        name="empty",
    )
    with pytest.raises(DataError, match="no interactions"):
        factory().fit(empty)


def test_not_fitted_is_reported(factory) -> None:  # type: ignore[no-untyped-def]
    model = factory()
    with pytest.raises(NotFittedError, match="not fitted"):
        model.recommend(["a0"], n=1)
    with pytest.raises(NotFittedError):
        model.recommend_new(history=["s0"], n=1)


def test_bad_groups_are_a_data_error(factory, board: Board) -> None:  # type: ignore[no-untyped-def]
    dataset, _, _ = board
    with pytest.raises(DataError, match="one label per user"):
        factory().fit(dataset, groups=np.zeros(3, dtype=np.int64))


def test_config_round_trips_through_json(fitted: Recommender) -> None:
    config = fitted.config
    text = config.model_dump_json()
    assert type(config).model_validate_json(text) == config
    assert json.loads(text) == config.model_dump(mode="json")


def test_save_load_bit_identical(fitted: Recommender, board: Board, tmp_path: Path) -> None:
    dataset, _, _ = board
    users = [*dataset.user_vocab.ids, "stranger"]
    folder = fitted.save(tmp_path / "model")
    loaded = Recommender.load(folder)
    assert type(loaded) is type(fitted) and loaded.config == fitted.config
    before, after = fitted.recommend(users, n=5), loaded.recommend(users, n=5)
    assert np.array_equal(before.ids, after.ids) and np.array_equal(before.scores, after.scores)
    assert before.unknown == after.unknown
    assert np.array_equal(fitted.score_rows(np.arange(4)), loaded.score_rows(np.arange(4)))
    new_before = fitted.recommend_new(history=["s1", "s2"], n=4)
    new_after = loaded.recommend_new(history=["s1", "s2"], n=4)
    assert np.array_equal(new_before.ids, new_after.ids) and np.array_equal(new_before.scores, new_after.scores)
    assert not list(tmp_path.glob("*.tmp")), "the temporary folder must not be left behind"


def test_recommend_new_from_history(fitted: Recommender, board: Board, knows_answer: bool) -> None:
    dataset, _, _ = board
    rec = fitted.recommend_new(history=["s0", "s1", "s2", "not-an-item"], n=3)
    assert rec.ids.shape == (1, 3) and rec.unknown == ["not-an-item"]
    taken = set(dataset.item_vocab.rows(["s0", "s1", "s2"]).tolist())
    assert not taken & set(rec.ids[0].tolist())
    assert (np.diff(rec.scores[0]) <= 0).all()
    if knows_answer:
        assert dataset.item_vocab.id(int(rec.ids[0, 0])) == "s3"


def test_recommend_new_with_nothing_is_the_fallback(fitted: Recommender) -> None:
    rec = fitted.recommend_new(n=3)
    assert rec.ids.shape == (1, 3) and (rec.ids >= 0).all()


def test_score_histories_is_score_new_batched(fitted: Recommender, board: Board) -> None:
    import scipy.sparse as sp

    from personas.recommend import NewUser

    dataset, _, _ = board
    history = dataset.matrix("binary")[:5]
    history = sp.vstack([history, sp.csr_matrix((1, dataset.n_items))]).tocsr()  # and an empty history
    batch = fitted.score_histories(history)
    assert batch.shape == (6, dataset.n_items)
    single = np.vstack([fitted.score_new(NewUser(None, None, history[i], None)) for i in range(6)])
    np.testing.assert_allclose(batch, single, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("shown", [[], ["s0", "s1"]])
def test_contributions_add_up_to_the_score_and_explain_names_the_largest(
    fitted: Recommender, board: Board, shown: list[str]
) -> None:
    from personas.recommend import NewUser, history_row

    dataset, _, _ = board
    history = dataset.item_vocab.rows(shown) if shown else np.array([], dtype=np.int64)
    parts = fitted.contributions(history=history, group=0)
    assert parts and all(p.shape == (dataset.n_items,) for p in parts.values())
    score = fitted.score_new(NewUser(None, None, history_row(history, dataset.n_items), 0))
    finite = np.all([np.isfinite(p) for p in parts.values()], axis=0)  # +inf/-inf: a part alone decides
    total = np.sum([np.where(finite, p, 0.0) for p in parts.values()], axis=0)
    # Up to a constant per user (blends z-normalise their parts), the parts are the score.
    np.testing.assert_allclose(total[finite] - total[finite].mean(), score[finite] - score[finite].mean(), atol=1e-8)
    rec = fitted.recommend_new(history=shown, group=0, n=4)
    items = rec.ids[0][rec.ids[0] >= 0]
    for item, reason in zip(items, fitted.explain(items, history=history, group=0), strict=True):
        lifts = {name: p[item] - p[np.isfinite(p)].mean() for name, p in parts.items()}
        largest = max(lifts, key=lambda name: lifts[name])
        assert reason.part == (largest if lifts[largest] > 0 else None) or np.isinf(lifts[largest])
        assert (reason.group is not None) == (reason.part == "group")
