"""Group quality measures on groups with a known answer, group sources see train only, and the LightFM peer
learns the two tastes of the synthetic data (and scores rows without history from their features)."""

from __future__ import annotations

import numpy as np
import pytest

from personas.data import Dataset
from personas.errors import ConfigError
from personas.evaluate import ColdItems, Experiment, TemporalSplit
from personas.evaluate.groups import (
    behaviour_groups,
    group_report,
    labeling_stability,
    profile_groups,
)
from personas.recommend import MostPopular
from personas.recommend.popular import GroupPopular


def test_group_report_on_two_obvious_blobs() -> None:
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal([5, 0], 0.1, (20, 2)), rng.normal([0, 5], 0.1, (20, 2))])
    truth = ["a"] * 20 + ["b"] * 20
    good = np.array([0] * 20 + [1] * 20)
    report = group_report(x, good, truth=truth)
    assert report.nmi == pytest.approx(1.0)
    assert report.ari == pytest.approx(1.0)
    assert report.silhouette is not None and report.silhouette > 0.9
    bad = np.tile([0, 1], 20)
    worse = group_report(x, bad, truth=truth)
    assert worse.ari is not None and worse.ari < 0.1
    assert worse.silhouette is not None and worse.silhouette < report.silhouette
    # Users without a group (-1) are left out.
    assert group_report(x, np.r_[good[:-1], -1]).sizes == [20, 19]


def test_stability_is_one_for_identical_partitions_up_to_renaming() -> None:
    base = np.array([0, 0, 1, 1, 2, 2])
    assert labeling_stability(lambda s: (base + s) % 3, seeds=(0, 1, 2)) == pytest.approx(1.0)
    assert labeling_stability(lambda s: np.random.default_rng(s).integers(0, 3, 300), seeds=(0, 1)) < 0.1
    with pytest.raises(ConfigError, match="at least 2 seeds"):
        labeling_stability(lambda s: base, seeds=(0,))


def test_behaviour_groups_find_the_tastes_and_groups_explain_behaviour(synthetic: Dataset) -> None:
    split = TemporalSplit().split(synthetic)
    labels = behaviour_groups(2)(split.train)
    taste = np.array([int(u[1:]) % 2 for u in synthetic.user_vocab.ids])
    report = group_report(np.eye(2)[labels], labels, truth=taste)
    assert report.ari == pytest.approx(1.0)
    res = Experiment(
        split, {"MostPopular": MostPopular(), "GroupPopular": GroupPopular()}, groups=behaviour_groups(2)
    ).run()
    assert res.run("GroupPopular").overall["Recall@10"] > res.run("MostPopular").overall["Recall@10"]


def test_profile_groups_label_every_user(synthetic: Dataset) -> None:
    labels = profile_groups(2)(synthetic)
    assert labels.shape == (synthetic.n_users,)
    assert set(labels.tolist()) == {0, 1}
    np.testing.assert_array_equal(labels, profile_groups(2)(synthetic))


def test_lightfm_peer_learns_tastes_and_ranks_cold_items_from_features(synthetic: Dataset) -> None:
    pytest.importorskip("lightfm")
    from personas.evaluate.peers import LightFMPeer

    split = TemporalSplit().split(synthetic)
    res = Experiment(split, {"pop": MostPopular(), "lfm": LightFMPeer(epochs=30, no_components=8)}).run()
    assert res.run("lfm").overall["NDCG@10"] > res.run("pop").overall["NDCG@10"]
    # Cold items: genres tell the tastes apart, so LightFM without identity features beats popularity.
    cold = ColdItems(fraction=0.25).split(synthetic)
    res = Experiment(cold, {"pop": MostPopular(), "lfm": LightFMPeer(epochs=30, no_components=8, identity=False)}).run()
    assert res.run("lfm").overall["NDCG@10"] > res.run("pop").overall["NDCG@10"]
    # Same seed, same scores.
    a = LightFMPeer(epochs=5, no_components=4).fit(split.train).score_rows(np.arange(3))
    b = LightFMPeer(epochs=5, no_components=4).fit(split.train).score_rows(np.arange(3))
    np.testing.assert_array_equal(a, b)


def test_profile_groups_place_users_without_history_by_side_text(synthetic: Dataset) -> None:
    from personas.evaluate import ColdUsers

    split = ColdUsers().split(synthetic)
    labels = profile_groups(2)(split.train)
    taste = np.array([int(u[1:]) % 2 for u in synthetic.user_vocab.ids])
    # The cold users' own text ("space opera fan" / "romance reader") puts them with their taste's group.
    warm = np.setdiff1d(np.arange(synthetic.n_users), split.users)
    group_taste = {g: np.bincount(taste[warm][labels[warm] == g]).argmax() for g in (0, 1)}
    assert [group_taste[g] for g in labels[split.users]] == taste[split.users].tolist()
    res = Experiment(
        split, {"MostPopular": MostPopular(), "GroupPopular": GroupPopular()}, groups=profile_groups(2)
    ).run()
    assert res.run("GroupPopular").overall["NDCG@10"] > res.run("MostPopular").overall["NDCG@10"]


def test_group_quality_table_rows_and_markdown(synthetic: Dataset) -> None:
    from personas.evaluate.protocols import group_quality_markdown, group_quality_table

    rows, result = group_quality_table(
        synthetic, sources=("behaviour",), ks=(2,), attributes=(), stability_seeds=(0, 1)
    )
    assert [r["groups"] for r in rows] == ["behaviour k=2"]
    row = rows[0]
    assert row["stability_ari"] == pytest.approx(1.0)
    assert row["GroupPopular Recall@10"] > row["MostPopular Recall@10"]
    md = group_quality_markdown(rows, result, command="personas evaluate --protocol groups")
    assert "| behaviour k=2 |" in md
    assert "| split | warm (TemporalSplit" in md


def test_text_item_knn_relates_items_by_their_texts_alone() -> None:
    import pandas as pd

    from personas.data import Dataset
    from personas.errors import DataError
    from personas.evaluate.peers import TextItemKNN

    inter = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["s1", "r1", "s2"]})
    items = pd.DataFrame({"item_id": ["s1", "s2", "s3", "r1", "r2"]})
    dataset = Dataset.from_frames(inter, items=items)
    space = np.array([i.startswith("s") for i in dataset.item_vocab.ids], dtype=np.float64)
    vectors = np.column_stack([space, 1 - space]) + 0.01 * np.arange(5)[:, None]
    model = TextItemKNN(k=2).fit(dataset, item_text_vectors=vectors)
    rec = model.recommend_new(history=["s1"], n=2)
    assert {dataset.item_vocab.id(int(i)) for i in rec.ids[0]} == {"s2", "s3"}  # s3: nobody took it yet
    with pytest.raises(DataError, match="needs item_text_vectors"):
        TextItemKNN().fit(dataset)


def test_item_demo_knn_blends_item_neighbours_with_the_vote_of_similar_users(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    from personas.data import Dataset
    from personas.evaluate.peers import ItemDemoKNN
    from personas.recommend import Recommender

    pairs, texts = [], {}
    for u in range(12):
        taste = "space" if u % 2 else "romance"
        texts[f"u{u}"] = f"I like {taste} films"
        for i in range(4):
            pairs.append((f"u{u}", f"{taste[0]}{(u + i) % 6}"))
    inter = pd.DataFrame(pairs, columns=["user_id", "item_id"])
    users = pd.DataFrame({"user_id": list(texts), "text": list(texts.values())})
    dataset = Dataset.from_frames(inter, users=users)
    model = ItemDemoKNN(k=5, users=3).fit(dataset)
    words = model.recommend_new(text="I like space films", n=4)
    assert all(dataset.item_vocab.id(int(i)).startswith("s") for i in words.ids[0])  # similar users' items
    items = model.recommend_new(history=["r0", "r1"], n=3)
    assert all(dataset.item_vocab.id(int(i)).startswith("r") for i in items.ids[0])
    loaded = Recommender.load(model.save(tmp_path / "peer"))
    again = loaded.recommend_new(text="I like space films", history=["s0"], n=4)
    assert np.array_equal(again.ids, model.recommend_new(text="I like space films", history=["s0"], n=4).ids)
