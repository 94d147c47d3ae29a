"""TextMatch and the router's text part: a user's words, in the space of the items' own texts, pick the items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset, item_documents
from personas.errors import ConfigError, DataError
from personas.recommend import ColdStartRouter, TextMatch

TASTES = 3


@pytest.fixture(scope="module")
def shelf() -> tuple[Dataset, np.ndarray]:
    """60 users in three tastes over 30 items (10 per taste); within a taste the first items are the popular
    ones. Item text vectors: one axis per taste (what an encoder of "space film", "romance"... would give)."""
    rng = np.random.default_rng(5)
    pairs = []
    for u in range(60):
        taste = u % TASTES
        weights = np.linspace(2.0, 0.2, 10)
        for i in rng.choice(np.arange(10), size=9, replace=False, p=weights / weights.sum()):
            pairs.append((f"u{u:02d}", f"i{10 * taste + int(i):02d}"))
    inter = pd.DataFrame(pairs, columns=["user_id", "item_id"])
    inter["timestamp"] = np.arange(len(inter))
    items = pd.DataFrame({"item_id": [f"i{i:02d}" for i in range(30)], "title": [f"film {i}" for i in range(30)]})
    dataset = Dataset.from_frames(inter, items=items, name="shelf")
    taste_of_item = np.array([int(i[1:]) // 10 for i in dataset.item_vocab.ids])
    vectors = np.eye(TASTES)[taste_of_item] + 0.05 * np.random.default_rng(0).random((dataset.n_items, TASTES))
    return dataset, vectors


def test_words_pick_their_items_and_the_prior_is_chosen_on_held_users(shelf: tuple[Dataset, np.ndarray]) -> None:
    dataset, vectors = shelf
    model = TextMatch().fit(dataset, item_text_vectors=vectors)
    assert model.prior_ in model.config.priors and model.prior_trials_.shape == (3, len(model.config.priors))
    taste_of_item = np.array([int(i[1:]) // 10 for i in dataset.item_vocab.ids])
    for taste in range(TASTES):
        rec = model.recommend_new(vector=np.eye(TASTES)[taste], n=5)
        assert set(taste_of_item[rec.ids[0]].tolist()) == {taste}  # different words, different lists


def test_the_prior_keeps_different_words_apart_when_popularity_wins_ndcg() -> None:
    """Three tastes plus five blockbusters everyone takes late: NDCG@10 alone asks for a large prior (the
    blockbusters are in every user's later items), which gives every user the same list; the overlap bound
    keeps a prior under which the lists of different tastes stay apart."""
    rng = np.random.default_rng(3)
    pairs = []
    for u in range(90):
        taste = u % TASTES
        for i in rng.choice(np.arange(10), size=6, replace=False):
            pairs.append((f"u{u:02d}", f"i{10 * taste + int(i):02d}"))
        pairs += [(f"u{u:02d}", f"i{30 + b:02d}") for b in range(5)]  # last in time: the held truth
    inter = pd.DataFrame(pairs, columns=["user_id", "item_id"])
    inter["timestamp"] = np.arange(len(inter))
    dataset = Dataset.from_frames(inter, name="blockbusters")
    rows = np.array([int(i[1:]) for i in dataset.item_vocab.ids])
    vectors = np.zeros((dataset.n_items, TASTES)) + 0.05 * np.random.default_rng(0).random((dataset.n_items, TASTES))
    vectors[rows < 30] += np.eye(TASTES)[rows[rows < 30] // 10]
    vectors[rows >= 30] += 0.4  # a blockbuster's text says a little of everything

    by_ndcg = TextMatch(max_overlap=1.0).fit(dataset, item_text_vectors=vectors)
    bounded = TextMatch(max_overlap=0.4).fit(dataset, item_text_vectors=vectors)
    priors, ndcg, overlap = bounded.prior_trials_
    assert ndcg[list(priors).index(by_ndcg.prior_)] == ndcg.max() > ndcg[list(priors).index(0.0)]  # popularity wins
    assert bounded.prior_ < by_ndcg.prior_
    assert overlap[list(priors).index(bounded.prior_)] <= 0.4 < overlap[list(priors).index(by_ndcg.prior_)]
    tops = [set(bounded.recommend_new(vector=np.eye(TASTES)[t], n=5).ids[0].tolist()) for t in range(TASTES)]
    assert not tops[0] & tops[1] and not tops[1] & tops[2]


def test_text_match_refuses_an_overlap_bound_outside_0_1() -> None:
    with pytest.raises(ConfigError, match="'max_overlap' parameter of TextMatch must be a float in \\[0, 1\\]"):
        TextMatch(max_overlap=1.5)


def test_text_match_needs_item_text_vectors(shelf: tuple[Dataset, np.ndarray]) -> None:
    with pytest.raises(DataError, match="needs item_text_vectors"):
        TextMatch().fit(shelf[0])


def test_the_router_reads_a_cold_users_words_with_the_weight_chosen_on_held_users(
    shelf: tuple[Dataset, np.ndarray],
) -> None:
    dataset, vectors = shelf
    taste_of_item = np.array([int(i[1:]) // 10 for i in dataset.item_vocab.ids])
    router = ColdStartRouter(min_history=3).fit(dataset, item_text_vectors=vectors)
    assert router.text_match_ is not None and router.text_weight_trials_.shape == (3, len(router.config.text_weights))
    # On this shelf a user's first items say their taste, so the words must count.
    assert router.text_weight_ > 0
    lists = [router.recommend_new(vector=np.eye(TASTES)[t], n=5).ids[0] for t in range(TASTES)]
    for taste, ids in enumerate(lists):
        assert (taste_of_item[ids] == taste).mean() >= 0.8
    without = ColdStartRouter(min_history=3).fit(dataset)  # no item texts: the words cannot count
    assert without.text_match_ is None
    assert np.array_equal(
        without.recommend_new(vector=np.eye(TASTES)[0], n=5).ids,
        without.recommend_new(vector=np.eye(TASTES)[1], n=5).ids,
    )


def test_the_router_tells_a_profile_from_a_wish(shelf: tuple[Dataset, np.ndarray], tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Users' side texts here point to the wrong taste (and mostly along a fourth axis no item text has): the
    weight of such a text against the item texts is chosen on their real items (0: it only hurts), but users
    who write alike take alike, so the peers part carries it; a wish still picks its items with the weight
    chosen for wishes."""
    dataset, vectors = shelf
    items = np.hstack([vectors, np.zeros((dataset.n_items, 1))])
    taste_of_user = np.array([int(u[1:]) % TASTES for u in dataset.user_vocab.ids])
    sides = np.hstack([0.3 * np.eye(TASTES)[(taste_of_user + 1) % TASTES], np.ones((dataset.n_users, 1))])
    router = ColdStartRouter(min_history=3).fit(dataset, item_text_vectors=items, side_vectors=sides)
    weights, peers, ndcg = router.profile_weight_trials_
    assert router.profile_weight_ == 0.0 and router.peer_weight_ > 0
    assert ndcg[peers > 0].max() > ndcg[peers == 0].max() and ndcg[weights > 0].max() < ndcg.max()
    profile = np.array([0.3, 0.0, 0.0, 1.0])
    wish = np.array([0.0, 1.0, 0.0, 0.0])
    assert router.reads_as_profile(profile) and not router.reads_as_profile(wish)
    assert not router.reads_as_profile(profile, "anything but that")  # what rules something out is a wish
    assert router.text_weight_of(profile) == 0.0 and router.text_weight_of(wish) == router.text_weight_ > 0
    taste_of_item = np.array([int(i[1:]) // 10 for i in dataset.item_vocab.ids])
    # written like the users of taste 2 (whose side text is 0.3 * axis 0 + axis 3): their items, not axis 0's
    as_profile = router.recommend_new(vector=profile, n=5)
    assert (taste_of_item[as_profile.ids[0]] == 2).mean() >= 0.8
    reasons = router.explain(as_profile.ids[0], history=np.zeros(0, dtype=np.int64), vector=profile)
    assert [reason.part for reason in reasons] == ["peers"] * 5  # the part that placed them says so
    assert (taste_of_item[router.recommend_new(vector=wish, n=5).ids[0]] == 1).mean() >= 0.8
    loaded = ColdStartRouter.load(router.save(tmp_path / "router"))
    assert loaded.profile_weight_ == 0.0 and loaded.peer_weight_ == router.peer_weight_
    assert loaded.reads_as_profile(profile)
    assert np.array_equal(loaded.recommend_new(vector=profile, n=5).ids, router.recommend_new(vector=profile, n=5).ids)
    assert np.array_equal(loaded.recommend_new(vector=wish, n=5).ids, router.recommend_new(vector=wish, n=5).ids)


def test_side_vectors_must_share_the_item_texts_space(shelf: tuple[Dataset, np.ndarray]) -> None:
    dataset, vectors = shelf
    with pytest.raises(DataError, match="side_vectors must be in the space of item_text_vectors"):
        ColdStartRouter().fit(dataset, item_text_vectors=vectors, side_vectors=np.ones((dataset.n_users, 5)))
    with pytest.raises(DataError, match="side_vectors must have one row per user"):
        ColdStartRouter().fit(dataset, item_text_vectors=vectors, side_vectors=np.ones((3, TASTES)))


def test_saved_router_keeps_its_text_part(shelf: tuple[Dataset, np.ndarray], tmp_path) -> None:  # type: ignore[no-untyped-def]
    dataset, vectors = shelf
    router = ColdStartRouter(min_history=3).fit(dataset, item_text_vectors=vectors)
    loaded = ColdStartRouter.load(router.save(tmp_path / "router"))
    query = np.array([0.1, 0.9, 0.0])
    assert np.array_equal(router.recommend_new(vector=query, n=6).ids, loaded.recommend_new(vector=query, n=6).ids)


def test_item_documents_read_like_sentences() -> None:
    inter = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"]})
    items = pd.DataFrame(
        {
            "item_id": ["a", "b"],
            "title": ["Alien", None],
            "release_year": ["1979", None],
            "genres": ["Horror|Sci-Fi", None],
        }
    )
    tags = pd.DataFrame({"user_id": ["u", "u", "u"], "item_id": ["a", "a", "a"], "tag": ["Space", "space", "ripley"]})
    dataset = Dataset.from_frames(inter, items=items, tags=tags)
    assert item_documents(dataset) == ["Alien (1979). Horror, Sci-Fi. Tags: space, ripley.", "b"]


def test_item_documents_can_say_what_a_product_is_from_its_reviews() -> None:
    # One review per product, no titles (issue 16's fine-food reviews): without the reviews, every item's text
    # is its id, and a user's words are compared with product codes.
    inter = pd.DataFrame(
        {
            "user_id": ["u", "v", "w", "x"],
            "item_id": ["B001", "B001", "B002", "B003"],
            "review": ["Dark roast coffee, rich.", "Smooth coffee" + " x" * 300, "My cats love it", None],
        }
    )
    dataset = Dataset.from_frames(inter)
    assert item_documents(dataset) == ["B001", "B002", "B003"]
    documents = item_documents(dataset, max_reviews=2, review_chars=20)
    assert documents == ["Dark roast coffee, r Smooth coffee x x x", "My cats love it", "B003"]


def test_reasons_name_the_part_that_contributed_most(shelf: tuple[Dataset, np.ndarray]) -> None:
    from personas.recommend import ITEM_PARTS, NewUser, history_row

    dataset, vectors = shelf
    router = ColdStartRouter(min_history=3).fit(dataset, item_text_vectors=vectors)
    for history, vector in ((np.array([], dtype=np.int64), np.eye(TASTES)[1]), (np.array([0, 1]), None)):
        rec = router.recommend_new(vector=vector, history=[dataset.item_vocab.id(int(h)) for h in history], n=6)
        items = rec.ids[0]
        parts = router.contributions(history=history, vector=vector)
        # The parts add up to the score the list was ranked by (the route's parts are z-scores: mean 0).
        total = sum(parts.values())
        query = NewUser(None, vector, history_row(history, dataset.n_items), None)
        assert np.allclose(total, router.score_new(query), atol=1e-9)
        reasons = router.explain(items, history=history, vector=vector)
        for item, reason in zip(items, reasons, strict=True):
            largest = max(parts, key=lambda name: parts[name][item])
            assert reason.part == (largest if parts[largest][item] > 0 else None)
            assert (reason.because_of >= 0) <= (reason.part in ITEM_PARTS)
    # A typed text's items are credited to the words only for what the words mean, never for popularity.
    text_reasons = router.explain(np.arange(dataset.n_items), history=np.array([], dtype=np.int64), vector=np.eye(3)[2])
    assert {r.part for r in text_reasons} <= {"side", "group", "content", "text", "popular", None}


def test_a_new_users_text_parts_are_kept_for_explaining_read_only(shelf: tuple[Dataset, np.ndarray]) -> None:
    """Recommending and then explaining one new user's words computes their parts once: the same arrays come
    back, read-only (shared by the next call); other inputs, and several rows at once, are computed afresh."""
    dataset, vectors = shelf
    model = TextMatch().fit(dataset, item_text_vectors=vectors)
    one, other = vectors[:1] + 0.5, vectors[1:2] + 0.5
    meaning, prior = model.vector_parts(one)
    again = model.vector_parts(one.copy())
    assert again[0] is meaning and again[1] is prior and not meaning.flags.writeable
    fresh = model.vector_parts(other)
    assert fresh[0] is not meaning and not np.array_equal(fresh[0], meaning)
    both = model.vector_parts(np.vstack([one, other]))
    assert both[0].flags.writeable  # several rows (fitting, evaluation): not kept
    np.testing.assert_allclose(both[0][0], meaning[0], rtol=1e-12)  # another BLAS kernel: equal up to rounding
    np.testing.assert_array_equal(model.vector_scores(one), meaning + prior)


def test_kept_text_parts_are_not_served_after_a_new_fit(shelf: tuple[Dataset, np.ndarray]) -> None:
    dataset, vectors = shelf
    model = TextMatch().fit(dataset, item_text_vectors=vectors)
    query = vectors[:1] + 0.5
    before = model.vector_parts(query)[0]
    model.fit(dataset, item_text_vectors=vectors[::-1].copy())  # the same object, other item texts
    after = model.vector_parts(query)[0]
    assert after is not before and not np.array_equal(after, before)
    np.testing.assert_array_equal(
        after, TextMatch().fit(dataset, item_text_vectors=vectors[::-1].copy()).vector_parts(query)[0]
    )
