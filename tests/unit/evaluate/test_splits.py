"""Every splitter leaks nothing, follows its rule, and is deterministic under its seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personas.data import Dataset
from personas.errors import ConfigError
from personas.evaluate import (
    ColdItems,
    ColdUsers,
    FewShotUsers,
    LeaveOneOut,
    RandomHoldout,
    Split,
    Splitter,
    TemporalSplit,
)

ALL = [TemporalSplit(), RandomHoldout(), LeaveOneOut(), ColdUsers(), FewShotUsers(n_shots=3), ColdItems()]


def pairs(ds: Dataset) -> set[tuple[int, int]]:
    return set(zip(ds.user_rows.tolist(), ds.item_rows.tolist(), strict=True))


@pytest.mark.parametrize("splitter", ALL, ids=lambda s: type(s).__name__)
def test_no_test_pair_in_train_and_nothing_lost(splitter: Splitter, synthetic: Dataset) -> None:
    split = splitter.split(synthetic)
    assert not pairs(split.train) & pairs(split.test)
    assert split.train.n_interactions + split.test.n_interactions + split.dropped_repeats == synthetic.n_interactions
    assert split.train.user_vocab is synthetic.user_vocab
    assert split.train.item_vocab is synthetic.item_vocab
    # Every evaluated user has something to find.
    assert (np.diff(split.truth().indptr) > 0).all()


@pytest.mark.parametrize("splitter", ALL, ids=lambda s: type(s).__name__)
def test_same_seed_same_split_other_seed_other_split(splitter: Splitter, synthetic: Dataset) -> None:
    a, b = splitter.split(synthetic), splitter.split(synthetic)
    assert pairs(a.test) == pairs(b.test)
    c = splitter.with_seed(7).split(synthetic)
    if not isinstance(splitter, TemporalSplit | LeaveOneOut):  # time decides those (seed only breaks ties)
        assert pairs(a.test) != pairs(c.test)


@pytest.mark.parametrize("splitter", ALL, ids=lambda s: type(s).__name__)
def test_validation_is_carved_from_train_only(splitter: Splitter, synthetic: Dataset) -> None:
    split = splitter.split(synthetic)
    val = split.validation()
    assert pairs(val.train) | pairs(val.test) <= pairs(split.train)
    assert not pairs(val.test) & pairs(split.test)
    assert val.splitter.config.seed == splitter.config.seed + 1


def test_temporal_test_is_the_last_fifth_and_small_users_stay_in_train(synthetic: Dataset) -> None:
    split = TemporalSplit(test_fraction=0.2, min_interactions=5).split(synthetic)
    inter = synthetic.interactions()
    test_pairs = pairs(split.test)
    for user, frame in inter.groupby("user"):
        frame = frame.sort_values("timestamp")
        in_test = [(user, i) in test_pairs for i in frame["item"]]
        if len(frame) < 5:
            assert not any(in_test)
            assert user not in split.users
        else:
            n_test = max(1, round(0.2 * len(frame)))
            assert in_test == [False] * (len(frame) - n_test) + [True] * n_test


def test_leave_one_out_holds_out_the_latest(synthetic: Dataset) -> None:
    split = LeaveOneOut().split(synthetic)
    inter = synthetic.interactions()
    latest = inter.sort_values("timestamp").groupby("user").tail(1)
    assert pairs(split.test) == set(zip(latest["user"], latest["item"], strict=True))


def test_cold_users_are_absent_from_train(synthetic: Dataset) -> None:
    split = ColdUsers(fraction=0.2).split(synthetic)
    assert len(split.users) == round(0.2 * synthetic.n_users)
    assert not set(split.users.tolist()) & set(split.train.user_rows.tolist())
    # All of a cold user's interactions are test.
    held = np.isin(synthetic.user_rows, split.users)
    assert held.sum() == split.test.n_interactions


@pytest.mark.parametrize("n_shots", [1, 3, 5])
def test_few_shot_users_reveal_exactly_their_first_n(n_shots: int, synthetic: Dataset) -> None:
    split = FewShotUsers(n_shots=n_shots).split(synthetic)
    inter = synthetic.interactions()
    train_pairs = pairs(split.train)
    for user in split.users:
        frame = inter[inter["user"] == user].sort_values("timestamp")
        revealed = [(user, i) in train_pairs for i in frame["item"]]
        assert revealed == [True] * n_shots + [False] * (len(frame) - n_shots)


def test_few_shot_holds_out_the_same_users_for_every_n(synthetic: Dataset) -> None:
    users = [FewShotUsers(n_shots=n).split(synthetic).users.tolist() for n in (1, 3, 5)]
    assert users[0] == users[1] == users[2]


def test_cold_items_are_absent_from_train_and_are_the_candidates(synthetic: Dataset) -> None:
    split = ColdItems(fraction=0.25).split(synthetic)
    assert split.candidates is not None
    assert not set(split.candidates.tolist()) & set(split.train.item_rows.tolist())
    assert set(split.test.item_rows.tolist()) <= set(split.candidates.tolist())
    # Evaluated users are warm: each has train history.
    assert set(split.users.tolist()) <= set(split.train.user_rows.tolist())


def test_repeated_pairs_are_dropped_from_test() -> None:
    import pandas as pd

    rows = [("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("a", "w", 4), ("a", "x", 5)]
    rows += [("b", item, t) for t, item in enumerate("vwxyz")]
    ds = Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))
    split = TemporalSplit(min_interactions=5).split(ds)
    assert split.dropped_repeats == 1
    assert split.users.tolist() == [ds.user_vocab.row("b")]
    assert not pairs(split.train) & pairs(split.test)


def test_bad_parameters_use_the_error_template() -> None:
    with pytest.raises(
        ConfigError, match=r"The 'test_fraction' parameter of TemporalSplit must be a float in \(0, 1\)"
    ):
        TemporalSplit(test_fraction=1.5)
    with pytest.raises(ConfigError, match="'min_interactions' parameter of FewShotUsers must be an int >= 6"):
        FewShotUsers(n_shots=5, min_interactions=4)


def test_split_describes_its_protocol(synthetic: Dataset) -> None:
    split: Split = ColdUsers(seed=3).split(synthetic)
    assert split.describe().startswith("cold-users (ColdUsers: seed=3, fraction=0.2)")
    assert "test users" in split.filtering()


def test_strict_few_shot_keeps_held_out_users_out_of_train_and_reveals_their_first_items() -> None:
    from personas.evaluate.splits import FewShotNewUsers, FewShotUsers

    rows = [(f"u{u}", f"i{(u + t) % 12}", float(t)) for u in range(20) for t in range(8)]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    dataset = Dataset.from_frames(inter)
    loose = FewShotUsers(n_shots=2, fraction=0.25, seed=1).split(dataset)
    strict = FewShotNewUsers(n_shots=2, fraction=0.25, seed=1).split(dataset)
    assert strict.revealed is not None and loose.revealed is None
    assert np.array_equal(strict.users, loose.users)  # the same held-out users, the same test items
    assert (strict.truth() != loose.truth()).nnz == 0
    held = strict.users
    assert not np.isin(strict.train.user_rows, held).any()  # never in train
    revealed = strict.revealed.matrix("binary")[held]
    assert (np.diff(revealed.indptr) == 2).all()  # their first two items, in time
    first_two = loose.train.matrix("binary")[held]
    assert (revealed != first_two).nnz == 0
    assert "revealed at prediction time only" in strict.filtering()
