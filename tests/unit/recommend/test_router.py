"""ColdStartRouter: each amount of history takes its route, and each route gives the obvious answer."""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset
from personas.errors import ConfigError, DataError
from personas.recommend import EASE, ColdStartRouter, Recommender
from personas.recommend.router_tuning import FEW_PARTS, switch_point
from personas.recommend.side import side_text_with_bands

TASTES = ["space aliens starships", "romance weddings love", "horror ghosts haunted"]


@pytest.fixture(scope="module")
def world() -> tuple[Dataset, np.ndarray]:
    """45 users in three tastes (own text says which) over 30 items, 10 per taste; plus three users who
    took nothing (one per taste) and one few-shot user (two items of taste 2)."""
    rng = np.random.default_rng(3)
    pairs, texts, labels = [], {}, {}
    for u in range(45):
        g = u % 3
        uid = f"u{u:02d}"
        texts[uid], labels[uid] = f"I like {TASTES[g]}", g
        for i in rng.choice(np.arange(10 * g, 10 * g + 10), size=6, replace=False):
            pairs.append((uid, f"i{int(i):02d}"))
    pairs += [("few", "i20"), ("few", "i21")]
    texts["few"], labels["few"] = "", -1
    for g in range(3):
        texts[f"cold{g}"], labels[f"cold{g}"] = f"I like {TASTES[g]}", -1
    inter = pd.DataFrame(pairs, columns=["user_id", "item_id"])
    inter["timestamp"] = np.arange(len(inter))
    users = pd.DataFrame({"user_id": list(texts), "text": list(texts.values())})
    items = pd.DataFrame(
        {"item_id": [f"i{i:02d}" for i in range(30)], "title": [f"{TASTES[i // 10]} film {i}" for i in range(30)]}
    )
    dataset = Dataset.from_frames(inter, users=users, items=items, name="world")
    groups = np.array([labels[uid] for uid in dataset.user_vocab.ids], dtype=np.int64)
    return dataset, groups


def taste_of(dataset: Dataset, rows: np.ndarray) -> list[int]:
    return [int(dataset.item_vocab.id(int(r))[1:]) // 10 for r in rows]


@pytest.fixture(scope="module")
def router(world: tuple[Dataset, np.ndarray]) -> ColdStartRouter:
    dataset, groups = world
    return ColdStartRouter(min_history=4, cold_content_weight=0.0, text_neighbours=10).fit(dataset, groups=groups)


def test_routes_by_history(router: ColdStartRouter, world: tuple[Dataset, np.ndarray]) -> None:
    dataset, _ = world
    route = {uid: router.why(dataset.user_vocab.row(uid)) for uid in ("u00", "few", "cold1")}
    assert route == {"u00": "warm", "few": "few", "cold1": "cold"}


def test_warm_users_get_the_warm_model(router: ColdStartRouter, world: tuple[Dataset, np.ndarray]) -> None:
    dataset, groups = world
    rows = dataset.user_vocab.rows(["u00", "u07"])
    ease = EASE(router.config.ease).fit(dataset, groups=groups)
    np.testing.assert_array_equal(router.score_rows(rows), ease.score_rows(rows))


def test_cold_users_in_the_dataset_are_placed_by_their_text(
    router: ColdStartRouter, world: tuple[Dataset, np.ndarray]
) -> None:
    dataset, _ = world
    ids, _ = router.recommend(["cold0", "cold1", "cold2"], n=5)
    for g, row in enumerate(ids):
        assert set(taste_of(dataset, row)) == {g}


def test_few_shot_users_follow_their_items(router: ColdStartRouter, world: tuple[Dataset, np.ndarray]) -> None:
    dataset, _ = world
    ids, _ = router.recommend(["few"], n=5)
    assert set(taste_of(dataset, ids[0])) == {2}
    new = router.recommend_new(history=["i10", "i11"], n=5)
    assert set(taste_of(dataset, new.ids[0])) == {1}


def test_new_users_by_text_group_or_vector(world: tuple[Dataset, np.ndarray]) -> None:
    dataset, groups = world
    centroids = np.eye(3)
    user_vectors = np.zeros((dataset.n_users, 3))
    user_vectors[groups >= 0, groups[groups >= 0]] = 1.0
    model = ColdStartRouter(cold_content_weight=0.0).fit(
        dataset, groups=groups, user_vectors=user_vectors, centroids=centroids
    )
    by_text = model.recommend_new(text="haunted ghosts at night", n=5)
    assert set(taste_of(dataset, by_text.ids[0])) == {2}
    by_group = model.recommend_new(group=1, n=5)
    assert set(taste_of(dataset, by_group.ids[0])) == {1}
    by_vector = model.recommend_new(vector=np.array([0.9, 0.1, 0.2]), n=5)
    assert set(taste_of(dataset, by_vector.ids[0])) == {0}


def test_content_reads_a_new_users_text(world: tuple[Dataset, np.ndarray]) -> None:
    """Without groups the cold route can still use the text against item texts (content)."""
    dataset, _ = world
    model = ColdStartRouter(cold_content_weight=5.0, tune_cold=False, content={"min_df": 1}).fit(dataset)
    rec = model.recommend_new(text="starships", n=5)
    assert set(taste_of(dataset, rec.ids[0])) == {0}


def test_router_with_its_parts_saves_and_loads(router: ColdStartRouter, tmp_path: Path) -> None:
    loaded = Recommender.load(router.save(tmp_path / "router"))
    users = ["u00", "few", "cold1", "stranger"]
    a, b = router.recommend(users, n=6), loaded.recommend(users, n=6)
    assert np.array_equal(a.ids, b.ids) and np.array_equal(a.scores, b.scores)
    ta, tb = router.recommend_new(text="romance love", n=4), loaded.recommend_new(text="romance love", n=4)
    assert np.array_equal(ta.ids, tb.ids) and np.array_equal(ta.scores, tb.scores)


def test_users_without_any_side_text(build) -> None:  # type: ignore[no-untyped-def]
    """No user table at all: cold users fall back to popularity, warm ones still get the warm model."""
    dataset = build([("u1", "a"), ("u1", "b"), ("u2", "a"), ("u3", "c")])
    model = ColdStartRouter(min_history=2).fit(dataset, groups=np.array([0, 0, 1]))
    assert model.side_.vectors_.shape == (3, 0)
    rec = model.recommend_new(text="anything at all", n=2)
    assert dataset.item_vocab.id(int(rec.ids[0, 0])) == "a"  # the most popular
    assert model.recommend(["u1"], n=1).ids.shape == (1, 1)


def test_cold_weights_are_tuned_on_hidden_users(world: tuple[Dataset, np.ndarray]) -> None:
    """Text says the taste here, so validation moves away from plain popularity (first candidate, wins ties)
    toward the side ridge or the groups; without tuning the config stands."""
    dataset, groups = world
    settings = {"cold_l2": None, "cold_group_weight": 0.0, "cold_content_weight": 0.0}
    tuned = ColdStartRouter(**settings).fit(dataset, groups=groups)
    l2, group_weight, _ = tuned.cold_weights_
    assert l2 > 0 or group_weight > 0
    fixed = ColdStartRouter(**settings, tune_cold=False).fit(dataset, groups=groups)
    assert fixed.cold_weights_.tolist() == [0.0, 0.0, 0.0]
    assert not fixed.side_ridge_.weights_.any()  # l2 = 0: popularity, no side weights


def test_batched_placement_equals_one_by_one(router: ColdStartRouter, world: tuple[Dataset, np.ndarray]) -> None:
    dataset, groups = world
    labels = groups.copy()
    rows = np.arange(0, dataset.n_users, 3)
    labels[rows] = -1  # as in the cold-weight tuning: these users must be placed by their text
    eligible = (np.diff(router.seen_.indptr) > 0) & (labels >= 0)
    batch = router.placer_.known_user_weights(rows, labels, eligible)
    single = np.vstack([router.placer_.known_user_weight(int(r), labels, eligible) for r in rows])
    np.testing.assert_allclose(batch, single)
    assert (batch.sum(axis=1)[batch.any(axis=1)] == pytest.approx(1.0)) and batch.any()


def test_age_band_token() -> None:
    assert side_text_with_bands("a 24-year-old male technician").endswith(" age_band_1")
    assert side_text_with_bands("a 60-year-old female").endswith(" age_band_6")
    assert side_text_with_bands("I like 80s films") == "I like 80s films"


def test_side_ridge_is_attribute_conditioned_popularity(build) -> None:  # type: ignore[no-untyped-def]
    """Women here took item w, men item m, everyone item p: a new woman gets w before m, a new man m before
    w; no side text at all gives plain popularity (p first)."""
    pairs, genders = [], {}
    for u in range(12):
        uid, woman = f"u{u}", u % 2 == 0
        genders[uid] = "F" if woman else "M"
        pairs += [(uid, "p"), (uid, "w" if woman else "m")]
        if u % 4 == 0:
            pairs.append((uid, "m" if woman else "w"))  # some cross-over, so both items are taken by both
    users = pd.DataFrame({"user_id": list(genders), "age": [30] * 12, "gender": list(genders.values())})
    dataset = build(pairs, users=users)
    model = ColdStartRouter(cold_l2=1.0, tune_cold=False, tune_few=False).fit(dataset)
    rank = {}
    for text in ("a 30-year-old female", "a 30-year-old male"):
        ids = model.recommend_new(text=text, n=3).ids[0]
        rank[text] = [dataset.item_vocab.id(int(i)) for i in ids]
    assert rank["a 30-year-old female"].index("w") < rank["a 30-year-old female"].index("m")
    assert rank["a 30-year-old male"].index("m") < rank["a 30-year-old male"].index("w")
    assert dataset.item_vocab.id(int(model.recommend_new(n=1).ids[0, 0])) == "p"


def test_few_route_weights_and_switch_are_chosen_on_hidden_users(world: tuple[Dataset, np.ndarray]) -> None:
    dataset, groups = world
    tuned = ColdStartRouter(few_shots=(1, 2)).fit(dataset, groups=groups)
    assert tuned.few_table_.shape == (len(tuned.few_shots_), len(FEW_PARTS))
    np.testing.assert_allclose(tuned.few_table_.sum(axis=1), 1.0)
    assert tuned.min_history_ in (1, 2, 3)  # a tuned N, or one past the largest
    # the switch adds up both validations' gains of the blends over the warm model alone
    simulated, known, known_users = tuned.switch_gains_
    assert tuned.switch_gains_.shape == (3, len(tuned.few_shots_))
    first = next((i for i, n in enumerate(known_users) if n >= tuned.config.switch_min_users), len(known_users))
    chosen = np.concatenate([simulated[:first], known[first:]])
    assert tuned.min_history_ == switch_point(tuned.few_shots_, chosen)
    fixed = ColdStartRouter(tune_few=False, min_history=7).fit(dataset, groups=groups)
    assert fixed.min_history_ == 7 and fixed.few_weights_for(3) == dict(
        zip(FEW_PARTS, fixed.config.few_weights, strict=True)
    )
    assert ColdStartRouter(tune_few=False).fit(dataset, groups=groups).min_history_ == 5


def test_batched_history_scores_equal_one_by_one(world: tuple[Dataset, np.ndarray]) -> None:
    from personas.recommend import ContentBased, GroupPopular, ItemKNN
    from personas.recommend.base import NewUser

    dataset, groups = world
    history = dataset.matrix("binary")[:6]
    for model in (EASE(), ItemKNN(k=5), ContentBased(min_df=1), GroupPopular()):
        model.fit(dataset, groups=groups)
        single = np.vstack([model.score_new(NewUser(None, None, history[i], None)) for i in range(6)])
        np.testing.assert_allclose(model.score_histories(history), single, atol=1e-12)


def test_side_ridge_primal_and_dual_forms_agree_with_the_dense_formula() -> None:
    import scipy.sparse as sp

    from personas.recommend.side import ridge as _ridge

    rng = np.random.default_rng(0)
    for n, d in ((30, 5), (5, 30)):  # primal (more rows), dual (more features)
        features = rng.integers(0, 2, (n, d)).astype(np.float64)
        features -= features.mean(axis=0)
        targets = sp.csr_matrix(rng.integers(0, 2, (n, 7)).astype(np.float64))
        mean = np.asarray(targets.mean(axis=0)).ravel()
        dense = np.linalg.solve(features.T @ features + 3.0 * np.eye(d), features.T @ (targets.toarray() - mean))
        np.testing.assert_allclose(_ridge(features, targets, mean, 3.0), dense, atol=1e-10)


@pytest.mark.parametrize(
    ("gains", "expected"),
    [
        ([0.5, -1.0, 0.2], 5),  # the blend pays only for the first size: warm from N = 5 on
        ([-1.0, 2.0, 0.0], 10),  # a loss at N = 1 is outweighed by the gain at N = 5; N = 10 adds nothing
        ([0.0, 0.0, 0.0], 1),  # no gain anywhere: the warm model from the first item (smallest wins ties)
        ([0.1, 0.1, 0.1], 11),  # gains at every size: one past the largest
    ],
)
def test_switch_point_maximises_the_summed_gains(gains: list[float], expected: int) -> None:
    assert switch_point(np.array([1, 5, 10]), np.array(gains)) == expected


def test_switch_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="'switch_holdout' parameter of ColdStartRouter must be a float in"):
        ColdStartRouter(switch_holdout=1.0)


def test_small_groups_held_out_of_a_fold_do_not_break_tuning() -> None:
    """Groups numbered by size: when every member of the smallest group falls in one validation fold, that
    fold's group model knows fewer groups than the placer (once 'matmul ... size 5 is different from 6')."""
    rng = np.random.default_rng(0)
    pairs, texts, labels = [], {}, []
    for g, size in enumerate([8, 7, 6, 5, 3, 1]):
        for _ in range(size):
            uid = f"u{len(labels):02d}"
            texts[uid] = f"taste{g} words"
            pairs += [(uid, f"i{int(i):02d}") for i in rng.choice(np.arange(5 * g, 5 * g + 5), size=3, replace=False)]
            labels.append(g)
    inter = pd.DataFrame(pairs, columns=["user_id", "item_id"])
    inter["timestamp"] = np.arange(len(inter))
    dataset = Dataset.from_frames(inter, users=pd.DataFrame({"user_id": list(texts), "text": list(texts.values())}))
    groups = np.array([labels[int(uid[1:])] for uid in dataset.user_vocab.ids], dtype=np.int64)
    vectors = np.eye(6, dtype=np.float32)[groups] + 0.01
    item_text = rng.normal(size=(dataset.n_items, 6)).astype(np.float32)
    router = ColdStartRouter().fit(
        dataset, groups=groups, user_vectors=vectors, centroids=np.eye(6), item_text_vectors=item_text
    )
    assert router.placer_.n_groups == 6
    # a new user whose words sit at the one-user group's centroid is placed there, and served
    assert router.group_of(vector=np.eye(6, dtype=np.float32)[5]) == 5
    ids, _ = router.recommend_new(vector=np.eye(6, dtype=np.float32)[5], n=3)
    assert (ids >= 0).all()


def test_centroids_must_match_the_groups(world: tuple[Dataset, np.ndarray]) -> None:
    dataset, groups = world
    with pytest.raises(DataError, match="2 centroids for 3 groups"):
        ColdStartRouter().fit(
            dataset, groups=groups, user_vectors=np.ones((dataset.n_users, 4)), centroids=np.ones((2, 4))
        )


def test_a_new_users_route_is_computed_once_for_recommending_and_explaining(
    world: tuple[Dataset, np.ndarray],
) -> None:
    """POST /users recommends, then explains the same user: the route parts are kept per thread for the last
    user asked about, and never handed to another user (other text, vector, history or group; other thread)."""
    dataset, groups = world
    user_vectors = np.zeros((dataset.n_users, 3))
    user_vectors[groups >= 0, groups[groups >= 0]] = 1.0
    model = ColdStartRouter(cold_content_weight=0.0).fit(
        dataset, groups=groups, user_vectors=user_vectors, centroids=np.eye(3)
    )
    fresh = Recommender.load(model.save(Path(tempfile.mkdtemp()) / "router"))  # the reference: another instance
    computed = []
    inner = model._compute_route_parts
    model._compute_route_parts = lambda query: computed.append(query) or inner(query)  # type: ignore[method-assign]
    queries = [
        {"text": "haunted ghosts", "vector": np.array([0.1, 0.2, 0.9])},
        {"text": "haunted ghosts", "vector": np.array([0.9, 0.2, 0.1])},  # same words, other vector
        {"text": "haunted ghosts", "vector": np.array([0.1, 0.2, 0.9]), "group": 0},
        {"history": ["i20", "i21"]},
        {"history": ["i20", "i22"]},
    ]

    def answer(recommender: Recommender, query: dict[str, Any]) -> tuple[list[int], list[str | None]]:
        rec = recommender.recommend_new(n=5, **query)
        history = np.array([dataset.item_vocab.row(i) for i in query.get("history", [])], dtype=np.int64)
        text, vector, group = query.get("text"), query.get("vector"), query.get("group")
        reasons = recommender.explain(rec.ids[0], history=history, group=group, text=text, vector=vector)
        return rec.ids[0].tolist(), [r.part for r in reasons]

    expected = [answer(fresh, q) for q in queries]
    assert [answer(model, q) for q in queries] == expected
    assert len(computed) == len(queries)  # once per user, not once for the list and once for its reasons
    with ThreadPoolExecutor(4) as pool:  # threads interleaving users: each gets its own answer
        assert list(pool.map(lambda i: answer(model, queries[i % 5]), range(40))) == [
            expected[i % 5] for i in range(40)
        ]


def test_a_refitted_router_does_not_answer_from_its_previous_fit(world: tuple[Dataset, np.ndarray]) -> None:
    """The parts kept for the last new user belong to one fit: fitting the same object again (other groups)
    answers as a router fitted only on the new groups does."""
    dataset, groups = world
    user_vectors = np.zeros((dataset.n_users, 3))
    user_vectors[groups >= 0, groups[groups >= 0]] = 1.0
    shifted = np.where(groups >= 0, (groups + 1) % 3, groups)  # the same users, their groups' tastes swapped round

    def answer(model: Recommender) -> tuple[list[int], list[str | None]]:
        rec = model.recommend_new(n=5, group=0)
        reasons = model.explain(rec.ids[0], history=np.zeros(0, dtype=np.int64), group=0)
        return rec.ids[0].tolist(), [r.part for r in reasons]

    def fitted(labels: np.ndarray, model: ColdStartRouter | None = None) -> ColdStartRouter:
        model = model or ColdStartRouter(cold_content_weight=0.0)
        return model.fit(dataset, groups=labels, user_vectors=user_vectors, centroids=np.eye(3))

    model = fitted(groups)
    before = answer(model)
    expected = answer(fitted(shifted))
    assert expected != before  # the two fits answer differently, so a stale answer would show
    assert answer(fitted(shifted, model)) == expected
