"""behaviour_weight = "auto": behaviour is fused only when it adds groups that hold up across seeds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from personas.discover import KMeansGroups, choose_behaviour_weight
from personas.encode import fuse
from personas.errors import ConfigError, DataError


def _structured(truth: np.ndarray, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(truth.max() + 1, dim))[truth] + 0.5 * rng.normal(size=(len(truth), dim))


def _noise(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim))


TRUTH = np.random.default_rng(0).integers(0, 6, 300)


def test_behaviour_that_is_noise_gets_no_weight() -> None:
    text, behaviour = _structured(TRUTH, 32, 1), _noise(300, 16, 2)
    choice = choose_behaviour_weight(text, behaviour, k=6)
    assert choice.weight == 0.0
    # noise mixed in scatters the text groups: at three quarters behaviour, less stable and off the truth
    scores = {s.weight: s for s in choice.scores}
    assert scores[0.75].stability < scores[0.0].stability - 0.3
    half = KMeansGroups(k=6).fit(fuse(text, behaviour, text_weight=0.25)).labels_
    assert normalized_mutual_info_score(TRUTH, half) < 0.8
    assert choice.behaviour_stability is not None and choice.behaviour_stability < 0.5


def test_behaviour_that_holds_the_groups_gets_weight() -> None:
    text, behaviour = _noise(300, 32, 3), _structured(TRUTH, 16, 4)
    choice = choose_behaviour_weight(text, behaviour, k=6)
    assert choice.weight > 0.0
    fused = text if choice.weight == 0 else fuse(text, behaviour, text_weight=1 - choice.weight)
    assert normalized_mutual_info_score(TRUTH, KMeansGroups(k=6).fit(fused).labels_) > 0.9
    assert {s.weight for s in choice.scores} == {0.0, 0.25, 0.5, 0.75}


def test_same_seed_same_choice_and_figures() -> None:
    text, behaviour = _structured(TRUTH, 32, 1), _structured(TRUTH, 16, 4)
    assert choose_behaviour_weight(text, behaviour, seed=3) == choose_behaviour_weight(text, behaviour, seed=3)


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(DataError, match="300 text vectors but 10 behaviour vectors"):
        choose_behaviour_weight(_noise(300, 4, 0), _noise(10, 4, 0))
    with pytest.raises(ConfigError, match=r"'weights' of choose_behaviour_weight must be floats in \[0, 1\]"):
        choose_behaviour_weight(_noise(30, 4, 0), _noise(30, 4, 0), weights=[0.0, 1.5])
