"""Cold users whose only input is their own tags: the tag-text user-kNN peer, the ColdTaggers split (who is
held out, which tags each variant keeps, nothing of theirs in train) and the protocol's wiring."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset
from personas.errors import ConfigError
from personas.evaluate.peers import TextUserKNN


class _Words:
    """A fake sentence encoder: one axis per keyword (space, romance), unit length."""

    name = "words"
    dim = 2

    def encode(self, texts: Sequence[str], **_: object) -> np.ndarray:
        out = np.array([[t.count("space"), t.count("romance")] for t in texts], dtype=np.float64) + 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class _WordUserKNN(TextUserKNN):
    def _encoder(self) -> _Words:
        return _Words()


def _two_tastes() -> Dataset:
    """u0..u3 say 'space' and took s-items, u4..u7 say 'romance' and took r-items; r1 is the most popular."""
    rows = [(f"u{u}", f"s{i}") for u in range(4) for i in range(2)]
    rows += [(f"u{u}", f"r{i}") for u in range(4, 8) for i in range(3)]
    users = pd.DataFrame(
        {"user_id": [f"u{u}" for u in range(8)], "text": ["space" if u < 4 else "romance" for u in range(8)]}
    )
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id"]), users=users)


def test_text_user_knn_votes_with_the_users_whose_side_text_is_alike() -> None:
    dataset = _two_tastes()
    model = _WordUserKNN(k=3).fit(dataset)
    rec = model.recommend_new(text="I love space", n=2)
    assert {dataset.item_vocab.id(int(i)) for i in rec.ids[0]} == {"s0", "s1"}
    rec = model.recommend_new(text="romance please", n=3)
    assert {dataset.item_vocab.id(int(i)) for i in rec.ids[0]} == {"r0", "r1", "r2"}
    # No words: global popularity (the r-items, taken by four users each... and s-items by four too: any top).
    none = model.recommend_new(n=3)
    assert np.allclose(none.scores[0], model.popularity_[none.ids[0]])
    # A known user is scored by the others' vote, never their own items alone.
    warm = model.recommend(["u0"], 2, exclude_seen=False)
    assert {dataset.item_vocab.id(int(i)) for i in warm.ids[0]} == {"s0", "s1"}


def test_text_user_knn_saves_its_voters(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from personas.recommend import Recommender

    model = _WordUserKNN(k=3).fit(_two_tastes())
    loaded = Recommender.load(model.save(tmp_path / "peer"))
    assert isinstance(loaded, TextUserKNN) and loaded.config.k == 3
    assert np.array_equal(loaded.voter_rows_, model.voter_rows_)
    assert np.allclose(loaded.voter_vectors_, model.voter_vectors_)


def test_text_user_knn_rejects_k_below_one() -> None:
    with pytest.raises(ConfigError, match=r"The .k. parameter of TextUserKNN must be an int >= 1\. Got 0 instead\."):
        TextUserKNN(k=0)


def _tagged() -> Dataset:
    """Eight users, four of whom (t0..t3) wrote tags: each tags one item they took ('on<u>'), one item they did
    not take ('off<u>') and one movie missing from the item table ('gone<u>'). Nobody else wrote any."""
    rows = [(f"t{u}", f"i{(u + j) % 6}") for u in range(4) for j in range(3)]
    rows += [(f"n{u}", f"i{(u + j) % 6}") for u in range(4) for j in range(3)]
    tags = []
    for u in range(4):
        tags += [(f"t{u}", f"i{u}", f"on{u}"), (f"t{u}", f"i{(u + 4) % 6}", f"off{u}"), (f"t{u}", "x9", f"gone{u}")]
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(6)], "title": [f"Film {i}" for i in range(6)]})
    return Dataset.from_frames(
        pd.DataFrame(rows, columns=["user_id", "item_id"]),
        items=items,
        tags=pd.DataFrame(tags, columns=["user_id", "item_id", "tag"]),
        name="tagged",
    )


def test_cold_taggers_holds_out_taggers_and_keeps_their_tags_out_of_train() -> None:
    from personas.data import build_profiles, item_documents
    from personas.evaluate.splits import ColdTaggers

    dataset = _tagged()
    split = ColdTaggers(fraction=0.5, seed=0).split(dataset)
    held = {str(u) for u in dataset.user_vocab.ids[split.users]}
    assert len(held) == 2 and held <= {"t0", "t1", "t2", "t3"}
    rows = [int(r) for r in split.users]
    # No interaction and no tag of theirs in train; so no profile or item text built from train has their words.
    assert not np.isin(split.train.user_rows, rows).any()
    train_tags = split.train.tags
    assert train_tags is not None and not train_tags["user"].isin(rows).any() and len(train_tags) == 6
    words = {f"{w}{u[1]}" for u in held for w in ("on", "off", "gone")}
    documents = " ".join(item_documents(split.train))
    profiles = build_profiles(split.train)
    assert not any(w in documents for w in words)
    assert all(profiles[r] == "" for r in rows)
    # The other taggers' tags stay (the models may learn from them), and so do the item texts' tags.
    kept = {f"on{u}" for u in range(4) if f"t{u}" not in held}
    assert all(w in documents for w in kept)
    # Their only input: every tag they wrote, given at prediction time.
    assert split.revealed_text == {
        r: f"tags: on{u[1]}, off{u[1]}, gone{u[1]}" for r, u in zip(rows, sorted(held), strict=True)
    }
    assert split.test.n_interactions == 6 and set(split.test.user_rows) == set(rows)
    assert "6 tags" in split.notes[0] and "2 of these tags are on the user's own test items" in split.notes[0]


def test_cold_taggers_no_held_tags_drops_only_the_tags_on_their_own_test_items() -> None:
    from personas.evaluate.splits import ColdTaggers

    dataset = _tagged()
    keep = ColdTaggers(fraction=0.5, seed=0).split(dataset)
    drop = ColdTaggers(fraction=0.5, held_tags="drop", seed=0).split(dataset)
    assert np.array_equal(keep.users, drop.users)  # the same users, the same truth: only their text differs
    assert (keep.truth() != drop.truth()).nnz == 0
    held = [str(u) for u in dataset.user_vocab.ids[drop.users]]
    assert drop.revealed_text == {int(r): f"tags: off{u[1]}, gone{u[1]}" for r, u in zip(drop.users, held, strict=True)}
    assert "held_tags=drop: 4 tags given as text, and 2 of 2 users keep any text" in drop.notes[0]
    train_tags = drop.train.tags
    assert train_tags is not None and len(train_tags) == 6  # train is the same in both variants


def test_cold_taggers_left_without_text_are_still_given_no_group() -> None:
    """A held-out user whose only tags are on their own test items keeps an empty text (and so no group from
    train, which placed them by an empty profile)."""
    from personas.evaluate import Experiment
    from personas.evaluate.splits import ColdTaggers
    from personas.recommend import MostPopular
    from personas.recommend.base import NewUser

    base = _tagged()
    tags = base.tags
    assert tags is not None
    only_on = tags[tags["tag"].str.startswith("on")]  # every tag is on an item its writer took
    dataset = Dataset.from_frames(
        base.interactions()[["user_id", "item_id"]],
        tags=pd.DataFrame(
            {
                "user_id": base.user_vocab.ids[only_on["user"]],
                "item_id": base.item_vocab.ids[only_on["item"]],
                "tag": only_on["tag"],
            }
        ),
    )
    split = ColdTaggers(fraction=0.5, held_tags="drop", seed=0).split(dataset)
    assert split.revealed_text == {int(r): "" for r in split.users}
    assert "0 tags given as text, and 0 of 2 users keep any text" in split.notes[0]
    seen: list[tuple[str | None, int | None]] = []

    class Spy(MostPopular):
        def _score_new(self, query: NewUser) -> np.ndarray:
            seen.append((query.text, query.group))
            return self.fallback_scores(1)[0]

    Experiment(split, {"spy": Spy()}, ["ndcg@10"], groups=lambda train: np.zeros(train.n_users, int)).run()
    assert seen == [(None, None), (None, None)]


def test_cold_taggers_validation_is_carved_from_the_taggers_left_in_train() -> None:
    from personas.evaluate.splits import ColdTaggers

    split = ColdTaggers(fraction=0.5, seed=0).split(_tagged())
    validation = split.validation()
    left = set(split.train.tags["user"])  # type: ignore[index]
    assert len(validation.users) == 1 and set(validation.users) <= left
    assert validation.revealed_text is not None and set(validation.revealed_text) == set(validation.users)


def test_cold_taggers_needs_tags_and_a_fraction_in_0_1() -> None:
    from personas.errors import DataError
    from personas.evaluate.splits import ColdTaggers

    plain = Dataset.from_frames(pd.DataFrame({"user_id": ["a"], "item_id": ["x"]}))
    with pytest.raises(DataError, match="has no tags"):
        ColdTaggers().split(plain)
    with pytest.raises(ConfigError, match=r"The 'fraction' parameter of ColdTaggers must be a float in \(0, 1\)"):
        ColdTaggers(fraction=1.0)


def test_experiment_gives_cold_taggers_their_tag_text_and_no_group() -> None:
    from personas.evaluate import Experiment
    from personas.evaluate.splits import ColdTaggers
    from personas.recommend import MostPopular
    from personas.recommend.base import NewUser

    seen: list[tuple[str | None, int | None]] = []

    class Spy(MostPopular):
        def _score_new(self, query: NewUser) -> np.ndarray:
            seen.append((query.text, query.group))
            return self.fallback_scores(1)[0]

    dataset = _tagged()
    split = ColdTaggers(fraction=0.5, held_tags="drop", seed=0).split(dataset)
    result = Experiment(split, {"spy": Spy()}, ["ndcg@10"], groups=lambda train: np.zeros(train.n_users, int)).run()
    held = [str(u) for u in dataset.user_vocab.ids[split.users]]
    assert seen == [(f"tags: off{u[1]}, gone{u[1]}", None) for u in held]
    assert any("held_tags=drop" in note for note in result.notes)


def test_cold_users_tags_protocol_reports_both_variants() -> None:
    from personas.evaluate.protocols import PROTOCOLS, model_specs, protocol_splits

    assert "cold-users-tags" in PROTOCOLS
    splits = protocol_splits("cold-users-tags", seed=2)
    assert [label for label, _ in splits] == ["cold-users-tags-all", "cold-users-tags-no-held"]
    assert [s.config.held_tags for _, s in splits] == ["keep", "drop"]  # type: ignore[attr-defined]
    assert all(s.config.seed == 2 for _, s in splits)
    assert model_specs(["TextUserKNN"])["TextUserKNN"].grid == {"k": [10, 50, 200]}


def test_subset_tags_keeps_the_rest_of_the_dataset_and_checks_its_mask() -> None:
    from personas.errors import DataError

    dataset = _tagged()
    fewer = dataset.subset_tags(np.arange(12) < 3)
    assert fewer.tags is not None and list(fewer.tags["tag"]) == ["on0", "off0", "gone0"]
    assert fewer.fingerprint() == dataset.fingerprint() and fewer.n_interactions == dataset.n_interactions
    assert dataset.subset_tags(np.zeros(12, dtype=bool)).tags is None
    with pytest.raises(DataError, match=r"The 'mask' parameter of Dataset.subset_tags must be .* Got shape \(2,\)"):
        dataset.subset_tags(np.ones(2, dtype=bool))
