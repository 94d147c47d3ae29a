"""The experiment masks train items, ranks only candidates, tunes on validation, and is deterministic."""

from __future__ import annotations

import json

import numpy as np
import pytest

from personas.config import ComponentConfig
from personas.data import Dataset
from personas.errors import ConfigError
from personas.evaluate import (
    NDCG,
    ColdItems,
    ColdUsers,
    Experiment,
    Recall,
    TemporalSplit,
    Tuned,
    rank_users,
)
from personas.recommend import FitInputs, MostPopular, Random, Recommender
from personas.recommend.base import NewUser


class Memorizer(Recommender):
    """Scores a user's own train items far above everything else: a model that would look perfect on
    any protocol that forgot to mask train items and had repeats in test."""

    def _fit(self, inputs: FitInputs) -> None:
        dataset = inputs.dataset
        self.matrix_ = dataset.matrix("binary")

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return self.matrix_[user_rows].toarray() * 1e6


class TasteConfig(ComponentConfig):
    right: bool = True


class Taste(Recommender):
    """Scores the items of the user's own taste half (right=True) or the other half (right=False)."""

    Config = TasteConfig
    config: TasteConfig

    def _fit(self, inputs: FitInputs) -> None:
        dataset = inputs.dataset
        m = dataset.matrix("binary")
        half = dataset.n_items // 2
        item_num = np.array([int(i[1:]) for i in dataset.item_vocab.ids])
        first = item_num < half
        self.likes_first_ = np.asarray(m[:, first].sum(axis=1)).ravel() >= np.asarray(m[:, ~first].sum(axis=1)).ravel()
        self.first_ = first

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        own = np.where(self.likes_first_[user_rows, None], self.first_[None, :], ~self.first_[None, :])
        return (own if self.config.right else ~own).astype(np.float64)


def test_train_items_never_appear_in_rankings(synthetic: Dataset) -> None:
    split = TemporalSplit().split(synthetic)
    model = Memorizer().fit(split.train)
    ranked = rank_users(model, split, 20)
    seen = split.train.matrix("binary")[split.users]
    for row, user_seen in zip(ranked, seen, strict=True):
        assert not set(row[row >= 0].tolist()) & set(user_seen.indices.tolist())
    # With the mask, memorising train earns nothing more than chance would.
    result = Experiment(split, {"memorizer": Memorizer(), "taste": Taste()}, [Recall(5)], headline="Recall@5").run()
    assert result.run("taste").overall["Recall@5"] > result.run("memorizer").overall["Recall@5"]


def test_rankings_respect_the_candidates_of_cold_items(synthetic: Dataset) -> None:
    split = ColdItems(fraction=0.25).split(synthetic)
    ranked = rank_users(MostPopular().fit(split.train), split, 15)
    assert split.candidates is not None
    assert set(ranked[ranked >= 0].tolist()) <= set(split.candidates.tolist())
    # Only 10 candidates: the rest of the list is padding.
    assert (ranked[:, len(split.candidates) :] == -1).all()


def test_a_model_that_knows_the_tastes_beats_random_with_a_small_p_value(synthetic: Dataset) -> None:
    split = TemporalSplit().split(synthetic)
    result = Experiment(split, {"Random": Random(), "Taste": Taste()}, ours=["Taste"]).run()
    comp = result.headline_comparisons()[0]
    assert comp.a == "Taste"
    assert comp.b == "Random"
    assert comp.mean_a > comp.mean_b
    assert comp.p_value < 0.01
    assert comp.n_users == len(split.users)


def test_tuning_picks_the_better_point_on_validation(synthetic: Dataset) -> None:
    split = TemporalSplit().split(synthetic)
    spec = Tuned(Taste, {"right": [False, True]})
    result = Experiment(split, {"taste": spec}).run()
    run = result.run("taste")
    assert run.tuned == {"right": True}
    assert len(run.trials) == 2
    assert run.trials[1]["NDCG@10"] > run.trials[0]["NDCG@10"]


def test_groups_are_computed_from_train_only(synthetic: Dataset) -> None:
    split = TemporalSplit().split(synthetic)
    seen: list[int] = []

    def groups(train: Dataset) -> np.ndarray:
        seen.append(train.n_interactions)
        return np.zeros(train.n_users, dtype=np.int64)

    Experiment(split, {"pop": Tuned(MostPopular)}, groups=groups).run()
    assert seen == [split.train.n_interactions]


def test_experiment_is_deterministic_and_prints_its_protocol(synthetic: Dataset) -> None:
    split = TemporalSplit(seed=3).split(synthetic)

    def run() -> tuple[str, dict[str, np.ndarray]]:
        res = Experiment(split, {"Random": Random(seed=1), "MostPopular": MostPopular()}, ours=["MostPopular"]).run()
        return res.to_json(), res.run("Random").per_user

    (json_a, per_a), (json_b, per_b) = run(), run()
    for key in per_a:
        np.testing.assert_array_equal(per_a[key], per_b[key])
    a, b = json.loads(json_a), json.loads(json_b)
    assert [r["metrics"] for r in a["results"]] == [r["metrics"] for r in b["results"]]
    res = Experiment(split, {"Random": Random(), "MostPopular": MostPopular()}, ours=["MostPopular"]).run()
    md = res.to_markdown(command="personas evaluate --dataset synthetic")
    for key in ("dataset", "split", "filtering", "ranking", "K", "seeds", "date", "machine"):
        assert f"| {key} |" in md
    assert "TemporalSplit: seed=3" in md
    assert "personas evaluate --dataset synthetic" in md
    assert "p-value" in md
    frame = res.per_user_frame()
    assert len(frame) == 2 * len(split.users)


def test_save_writes_markdown_and_json(synthetic: Dataset, tmp_path: object) -> None:
    from pathlib import Path

    split = TemporalSplit().split(synthetic)
    res = Experiment(split, {"MostPopular": MostPopular()}).run()
    md, js = res.save(Path(str(tmp_path)), "warm", command="cmd")
    assert md.read_text().startswith("# warm on synthetic")
    assert json.loads(js.read_text())["command"] == "cmd"


def test_bad_experiment_inputs(synthetic: Dataset) -> None:
    split = TemporalSplit().split(synthetic)
    with pytest.raises(ConfigError, match="at least one model"):
        Experiment(split, {}).run()
    with pytest.raises(ConfigError, match="headline metric"):
        Experiment(split, {"p": MostPopular()}, [NDCG(5)]).run()
    with pytest.raises(ConfigError, match="'ours' names"):
        Experiment(split, {"p": MostPopular()}, ours=["q"]).run()


class TextTaste(Recommender):
    """Knows nothing from history; for new users reads the profile text ("space" -> the first half)."""

    def _fit(self, inputs: FitInputs) -> None:
        dataset = inputs.dataset
        self.first_ = np.array([int(i[1:]) < dataset.n_items // 2 for i in dataset.item_vocab.ids])

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return np.zeros((len(user_rows), len(self.first_)))

    def _score_new(self, query: NewUser) -> np.ndarray:
        likes_first = "space" in (query.text or "")
        return (self.first_ == likes_first).astype(np.float64)


def test_cold_users_are_scored_from_their_profile_text_only(synthetic: Dataset) -> None:
    split = ColdUsers().split(synthetic)
    texts_seen: list[int] = []

    def profiles(train: Dataset) -> list[str | None]:
        texts_seen.append(train.n_interactions)
        return train.user_texts()

    res = Experiment(split, {"text": TextTaste(), "pop": MostPopular()}, profiles=profiles, ours=["text"]).run()
    assert texts_seen == [split.train.n_interactions]
    assert res.run("text").overall["NDCG@10"] > res.run("pop").overall["NDCG@10"]
    assert res.run("text").overall["Precision@10"] > 0.5


def test_models_without_a_new_user_path_score_cold_rows_as_they_are(synthetic: Dataset) -> None:
    split = ColdUsers().split(synthetic)
    random_ranks = rank_users(Random().fit(split.train), split, 5)
    popular_ranks = rank_users(MostPopular().fit(split.train), split, 5)
    assert len({tuple(r) for r in random_ranks}) > 1  # random differs per user, not a popularity fallback
    assert len({tuple(r) for r in popular_ranks}) == 1
