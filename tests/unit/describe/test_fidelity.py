"""Name fidelity on hand-made data: a bag-of-words encoder over three words makes every answer known."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from personas.describe import name_fidelity, name_similarities
from personas.encode import Encoder
from personas.errors import DataError

WORDS = ("tea", "coffee", "dogs")


class Words:
    """Counts of three words, unit-normalised: a deterministic toy encoder that follows the Encoder protocol."""

    name = "words-3"
    dim = len(WORDS)

    def encode(
        self, texts: Sequence[str | bytes | None], *, batch_size: int | None = None, show_progress: bool | None = None
    ) -> np.ndarray:
        rows = np.array([[str(t or "").split().count(w) for w in WORDS] for t in texts], dtype=np.float32)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


# Two tea drinkers who also like dogs a little, two coffee drinkers, one dog owner; persona 0 = tea, 1 = coffee,
# 2 = dogs.
USERS = ["tea tea tea dogs", "tea tea", "coffee coffee", "coffee coffee coffee dogs", "dogs dogs"]
LABELS = np.array([0, 0, 1, 1, 2])


@pytest.fixture
def user_vectors() -> np.ndarray:
    return Words().encode(USERS)


def test_the_words_encoder_is_an_encoder() -> None:
    assert isinstance(Words(), Encoder)


def test_names_that_match_their_groups_rank_every_member_first(user_vectors: np.ndarray) -> None:
    fid = name_fidelity(["tea", "coffee", "dogs"], LABELS, user_vectors, encoder=Words(), users="word counts")
    assert [p.auc for p in fid.personas] == [1.0, 1.0, 1.0]
    assert fid.mean_auc == fid.worst_auc == 1.0
    assert fid.matcher_accuracy == 1.0
    assert [p.matched for p in fid.personas] == [1.0, 1.0, 1.0]
    assert fid.chance_majority == pytest.approx(2 / 5)
    assert fid.chance_uniform == pytest.approx(1 / 3)
    # three different words: orthogonal names
    assert fid.max_name_similarity == pytest.approx(0.0)
    assert fid.encoder == "words-3" and fid.users == "word counts" and fid.n_users == 5


def test_swapped_names_rank_the_other_group_first(user_vectors: np.ndarray) -> None:
    fid = name_fidelity(["coffee", "tea"], np.array([0, 0, 1, 1]), user_vectors[:4], encoder=Words())
    assert [p.auc for p in fid.personas] == [0.0, 0.0]
    assert fid.mean_auc == 0.0
    assert fid.matcher_accuracy == 0.0


def test_a_name_that_half_fits(user_vectors: np.ndarray) -> None:
    # "dogs" for the tea drinkers {0, 1} against {2, 3, 4}; cosines to "dogs": 0.32, 0, 0, 0.32, 1. Pairs a member
    # wins (ties count half): user 0 beats 2, ties 3, loses to 4 (1.5); user 1 ties 2, loses to 3 and 4 (0.5).
    # AUC = 2 / 6.
    fid = name_fidelity(["dogs", "coffee", "tea"], LABELS, user_vectors, encoder=Words())
    assert fid.personas[0].auc == pytest.approx(2 / 6)


def test_identical_names_are_not_distinct(user_vectors: np.ndarray) -> None:
    fid = name_fidelity(["tea coffee", "tea coffee", "dogs"], LABELS, user_vectors, encoder=Words())
    assert fid.max_name_similarity == pytest.approx(1.0)
    assert fid.closest_pair == (0, 1)
    assert fid.personas[0].closest_name == 1 and fid.personas[1].closest_name == 0
    # pairs: (0,1) = 1, (0,2) = (1,2) = 0
    assert fid.mean_name_similarity == pytest.approx(1 / 3)
    assert name_similarities(Words().encode(["tea", "tea tea", "coffee"]))[0, 1] == pytest.approx(1.0)


def test_noise_users_are_left_out(user_vectors: np.ndarray) -> None:
    labels = np.array([0, 0, 1, 1, -1])
    fid = name_fidelity(["tea", "coffee"], labels, user_vectors, encoder=Words())
    assert fid.n_users == 4
    assert fid.mean_auc == 1.0 and fid.matcher_accuracy == 1.0


def test_precomputed_name_vectors_give_the_same_answer(user_vectors: np.ndarray) -> None:
    names = ["tea", "coffee", "dogs"]
    by_encoder = name_fidelity(names, LABELS, user_vectors, encoder=Words())
    given = name_fidelity(names, LABELS, user_vectors, name_vectors=Words().encode(names))
    assert given.mean_auc == by_encoder.mean_auc and given.encoder == "given name vectors"


def test_a_persona_with_every_user_has_no_auc(user_vectors: np.ndarray) -> None:
    fid = name_fidelity(["tea", "coffee"], np.zeros(5, dtype=int), user_vectors, encoder=Words())
    assert fid.personas[0].auc is None and fid.personas[1].auc is None
    assert fid.mean_auc is None and fid.personas[1].matched is None


def test_mistakes_say_what_to_fix(user_vectors: np.ndarray) -> None:
    with pytest.raises(DataError, match="labels go up to persona 2 but 2 names"):
        name_fidelity(["tea", "coffee"], LABELS, user_vectors, encoder=Words())
    with pytest.raises(DataError, match="one row per label"):
        name_fidelity(["tea", "coffee", "dogs"], LABELS, user_vectors[:3], encoder=Words())
    with pytest.raises(DataError, match="exactly one of"):
        name_fidelity(["tea", "coffee", "dogs"], LABELS, user_vectors)
    with pytest.raises(DataError, match="shape"):
        name_fidelity(["tea", "coffee", "dogs"], LABELS, user_vectors, name_vectors=np.ones((3, 5)))
