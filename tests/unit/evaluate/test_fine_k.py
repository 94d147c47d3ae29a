"""The number of fine personas by validation: held-out items by hand, and a k that recommends them better."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from personas.data import Dataset
from personas.errors import ConfigError
from personas.evaluate.fine_k import choose_fine_k, validation_split


def four_tastes() -> Dataset:
    """Users of four tastes (items a0..a4, b0..b4, ...) take five items of their taste, in time order."""
    rows = []
    for t, taste in enumerate("abcd"):
        for u in range(6):
            for step, i in enumerate(np.roll(np.arange(5), u)):
                rows.append((f"{taste}{u}", f"{taste}{i}", 100 * t + 10 * u + step))
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))


def test_the_last_fifth_of_each_history_is_held_out() -> None:
    data = four_tastes()
    train, relevant = validation_split(data, fraction=0.2, min_interactions=5)
    assert train.n_interactions == 24 * 4 and relevant.nnz == 24
    user = data.user_vocab.row("a1")
    held = data.item_vocab.ids[relevant[user].indices].tolist()
    assert held == ["a3"]  # a1 took a4, a0, a1, a2, then a3: the last one is held out


def test_the_k_whose_groups_match_the_tastes_wins_and_ties_go_to_fewer_groups() -> None:
    data = four_tastes()
    train, relevant = validation_split(data)
    taste = np.array([ord(str(u)[0]) - ord("a") for u in data.user_vocab.ids])
    by_k = {2: taste // 2, 4: taste, 8: taste * 2 + (np.arange(len(taste)) % 2)}  # 8: each taste split in two
    choice = choose_fine_k(train, relevant, by_k.__getitem__, [8, 2, 4])
    scores = {s.k: s.ndcg for s in choice.scores}
    assert [s.k for s in choice.scores] == [2, 4, 8]
    assert scores[4] > scores[2]
    assert choice.k == 4  # 8 groups recommend no better than 4 here: the fewer groups win within 1%
    assert "fewest groups" in choice.rule and choice.metric == "NDCG@10 of group-popular"
    with pytest.raises(ConfigError, match="no user has held-out interactions"):
        choose_fine_k(train, sp.csr_matrix(relevant.shape), by_k.__getitem__, [2])
