"""Reasons come from the model, and events move the list toward what was taken.

The shop below is shaped like product reviews (the fine-food reviews of issue 16): every user reviewed one
product, so no two items were ever taken together; the users' words put them in three groups (coffee, cat
food, sauces), and cat food is the most reviewed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset
from personas.recommend import (
    NO_REASON,
    ColdStartRouter,
    GroupPopular,
    Hybrid,
    MostPopular,
    Reason,
    Recommender,
    reason_phrases,
)

KINDS = {"coffee": "dark roast coffee beans", "cat": "cat food for my cats", "sauce": "hot sauce for cooking"}


def kind_of(item_id: str) -> str:
    return item_id.split("-")[0]


@pytest.fixture(scope="module")
def shop() -> tuple[Dataset, np.ndarray]:
    """30 products, 10 per kind; one review per user; each cat-food product has three reviewers, the others
    one (cat food is the most popular). Groups: the reviewers' kinds (what their words would give)."""
    pairs, texts, groups = [], [], []
    for g, kind in enumerate(KINDS):
        for i in range(10):
            for r in range(3 if kind == "cat" else 1):
                user = f"{kind}-reviewer-{i}-{r}"
                pairs.append((user, f"{kind}-{i}"))
                texts.append((user, f"I reviewed {KINDS[kind]}"))
                groups.append((user, g))
    inter = pd.DataFrame(pairs, columns=["user_id", "item_id"])
    inter["timestamp"] = np.arange(len(inter))
    users = pd.DataFrame(texts, columns=["user_id", "text"])
    dataset = Dataset.from_frames(inter, users=users, name="shop")
    label = dict(groups)
    return dataset, np.array([label[u] for u in dataset.user_vocab.ids], dtype=np.int64)


def top_kinds(model: Recommender, rec_ids: np.ndarray) -> list[str]:
    return [kind_of(str(model.item_vocab_.id(int(i)))) for i in rec_ids if i >= 0]


def test_two_coffee_purchases_keep_coffee_on_top(shop: tuple[Dataset, np.ndarray]) -> None:
    dataset, groups = shop
    router = ColdStartRouter().fit(dataset, groups=groups)
    assert router.route_of(2) == "few"
    coffee = router.item_vocab_.rows(["coffee-0", "coffee-1"])
    # As the service serves them: a new user placed in the coffee group who bought two coffees, and the same
    # purchases with the group left to the model.
    for group in (0, None):
        rec = router.recommend_new(history=["coffee-0", "coffee-1"], group=group, n=5)
        assert top_kinds(router, rec.ids[0]) == ["coffee"] * 5
        reasons = router.explain(rec.ids[0], history=coffee, group=group)
        assert {r.part for r in reasons} == {"group"}
    # A reviewer of the run who buys two more coffees (the service's path for events of a known user).
    reviewer = router.user_vocab_.row("coffee-reviewer-5-0")
    seen = router.seen_[reviewer].indices
    rec = router.recommend_new(history=["coffee-5", "coffee-0", "coffee-1"], group=int(groups[reviewer]), n=5)
    assert top_kinds(router, rec.ids[0]) == ["coffee"] * 5
    assert len(seen) == 1


def test_a_list_that_is_global_popularity_is_not_credited_to_a_group(shop: tuple[Dataset, np.ndarray]) -> None:
    dataset, _ = shop
    # One group of everyone: its rates are everyone's, so group-popular is popularity.
    everyone = np.zeros(dataset.n_users, dtype=np.int64)
    popular_list = MostPopular().fit(dataset).recommend_new(n=5).ids[0]
    for model in (
        GroupPopular().fit(dataset, groups=everyone),
        Hybrid(weights={"group_popular": 1.0, "item_knn": 1.0, "ease": 1.0, "content": 0.0}).fit(
            dataset, groups=everyone
        ),
    ):
        rec = model.recommend_new(history=[], group=0, n=5)
        assert np.array_equal(rec.ids[0], popular_list)
        reasons = model.explain(rec.ids[0], history=np.array([], dtype=np.int64), group=0)
        assert all(r.group is None and r.part == "popular" for r in reasons), reasons
        phrases = [reason_phrases(r, str, lambda g: "everyone") for r in reasons]
        assert all("persona" not in " ".join(p) for p in phrases)


def test_a_group_that_lifts_its_items_is_named(shop: tuple[Dataset, np.ndarray]) -> None:
    dataset, groups = shop
    model = GroupPopular().fit(dataset, groups=groups)
    rec = model.recommend_new(group=2, n=5)
    assert top_kinds(model, rec.ids[0]) == ["sauce"] * 5
    reasons = model.explain(rec.ids[0], history=np.array([], dtype=np.int64), group=2)
    assert all(r.part == "group" and r.group == 2 for r in reasons)
    assert reason_phrases(reasons[0], str, lambda g: "sauce · hot")[0] == "popular with persona 2 (sauce · hot)"


def test_a_ranked_list_explained_once_explains_its_prefixes(shop: tuple[Dataset, np.ndarray]) -> None:
    """explain_ranked: the reasons of the whole list, and from which length on a prefix alone reads the same
    (what the service's precomputed lists rely on)."""
    dataset, groups = shop
    model = ColdStartRouter().fit(dataset, groups=groups)
    history = np.array([0, 11], dtype=np.int64)
    items = model.recommend_new(history=[str(dataset.item_vocab.ids[h]) for h in history], group=0, n=12).ids[0]
    reasons, stable = model.explain_ranked(items, history=history, group=0)
    assert reasons == model.explain(items, history=history, group=0) and 1 <= stable <= len(items)
    for k in range(stable, len(items) + 1):
        assert model.explain(items[:k], history=history, group=0) == reasons[:k]


def test_an_item_no_part_lifts_gets_no_made_up_reason() -> None:
    # Every item taken once: popularity cannot tell items apart, so it is no reason for any of them.
    flat = Dataset.from_frames(
        pd.DataFrame({"user_id": [f"u{i}" for i in range(6)], "item_id": [f"i{i}" for i in range(6)]}), name="flat"
    )
    model = MostPopular().fit(flat)
    rec = model.recommend_new(n=3)
    reasons = model.explain(rec.ids[0], history=np.array([], dtype=np.int64))
    assert reasons == [Reason(part=None)] * 3
    assert reason_phrases(reasons[0], str, str) == [NO_REASON]


def test_hybrid_leaves_content_out_for_a_vector_of_another_space(shop: tuple[Dataset, np.ndarray]) -> None:
    dataset, groups = shop
    # Content's item vectors are one feature per product; a new user's text vector (4-d here, 384-d from MiniLM)
    # lives in another space: content cannot read it, and the rest of the blend still answers.
    weights = {"group_popular": 1.0, "item_knn": 1.0, "ease": 1.0, "content": 1.0}
    model = Hybrid(weights=weights).fit(dataset, groups=groups, item_vectors=np.eye(dataset.n_items))
    text_vector = np.ones(4)
    rec = model.recommend_new(text="coffee", vector=text_vector, history=["coffee-0"], group=0, n=5)
    assert top_kinds(model, rec.ids[0]) == ["coffee"] * 5
    taken = model.item_vocab_.rows(["coffee-0"])
    reasons = model.explain(rec.ids[0], history=taken, group=0, text="coffee", vector=text_vector)
    assert {r.part for r in reasons} == {"group"}
