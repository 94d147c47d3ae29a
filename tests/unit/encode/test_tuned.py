"""The projection head tuned on interactions: identity at the start, learns a hidden shared taste, seeded,
saved as arrays without pickle, and its config refuses bad values in the usual template."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from personas.encode import ProjectionHead, TextInput, TfidfEncoder, TuneConfig, TunedEncoder, tune_head
from personas.errors import ConfigError, DataError

DIM, CLUSTERS, N_USERS, N_ITEMS = 32, 4, 240, 80


def synthetic(seed: int = 0) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """Users and items share a hidden cluster, but users' texts show it along one direction (A[c]) and items'
    texts along another (B[c]), so the untrained head cannot match a user with their items; a linear head can."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(DIM, DIM)))[0][: 2 * CLUSTERS]  # orthonormal directions
    a, b = basis[:CLUSTERS], basis[CLUSTERS:]
    user_cluster = np.arange(N_USERS) % CLUSTERS
    item_cluster = np.arange(N_ITEMS) % CLUSTERS
    users = a[user_cluster] + 0.15 * rng.normal(size=(N_USERS, DIM))
    items = b[item_cluster] + 0.15 * rng.normal(size=(N_ITEMS, DIM))
    rows, cols = [], []
    for u in range(N_USERS):
        same = np.flatnonzero(item_cluster == user_cluster[u])
        taken = rng.choice(same, 8, replace=False)
        rows += [u] * len(taken)
        cols += list(taken)
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(N_USERS, N_ITEMS))
    norm = lambda v: (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    return norm(users), norm(items), matrix


def recall_at(users: np.ndarray, items: np.ndarray, matrix: sp.csr_matrix, k: int) -> float:
    top = np.argsort(-(users @ items.T), axis=1)[:, :k]
    hits = [len(set(top[u]) & set(matrix[u].indices)) / min(k, matrix[u].nnz) for u in range(len(users))]
    return float(np.mean(hits))


FAST = TuneConfig(epochs=8, batch_size=64, learning_rate=0.02, temperature=0.1, device="cpu")


def test_untrained_head_is_the_identity() -> None:
    users, _, _ = synthetic()
    head = ProjectionHead.identity(DIM)
    np.testing.assert_allclose(head.apply(users), users, atol=1e-6)
    zero = np.zeros((1, DIM), dtype=np.float32)
    assert not head.apply(zero).any()  # users without text stay "no vector"


def test_tuning_finds_the_hidden_taste_for_users_it_never_saw() -> None:
    users, items, matrix = synthetic()
    train, test = slice(0, 180), slice(180, N_USERS)  # the last 60 users are never seen in training
    head, evidence = tune_head(users[train], items, matrix[train], FAST, seed=0, show_progress=False)
    # Each user took 8 of the 20 items of their cluster: recall@20 is 1 when the cluster is found, 0.25 by chance.
    before = recall_at(users[test], items, matrix[test], 20)
    after = recall_at(head.apply(users[test]), head.apply(items), matrix[test], 20)
    assert before < 0.35  # the base space does not link users with their items
    assert after > 0.9
    assert evidence["held_out_loss"][evidence["best_epoch"]] < evidence["held_out_loss"][0]
    assert evidence["epochs"] >= evidence["best_epoch"] >= 1
    assert evidence["pairs"]["train"] + evidence["pairs"]["held_out"] > matrix[train].nnz  # item pairs too


def test_same_seed_same_head_and_other_seed_another() -> None:
    users, items, matrix = synthetic()
    config = FAST.model_copy(update={"epochs": 2})
    first, _ = tune_head(users, items, matrix, config, seed=3, show_progress=False)
    second, _ = tune_head(users, items, matrix, config, seed=3, show_progress=False)
    other, _ = tune_head(users, items, matrix, config, seed=4, show_progress=False)
    np.testing.assert_array_equal(first.weight, second.weight)
    np.testing.assert_array_equal(first.bias, second.bias)
    assert first.fingerprint() == second.fingerprint() != other.fingerprint()


def test_save_and_load_round_trip_without_pickle(tmp_path: Path) -> None:
    users, items, matrix = synthetic()
    head, _ = tune_head(users, items, matrix, FAST.model_copy(update={"epochs": 1}), seed=0, show_progress=False)
    folder = head.save(tmp_path / "head")
    assert sorted(p.name for p in folder.iterdir()) == ["bias.npy", "head.json", "weight.npy"]
    back = ProjectionHead.load(folder)
    np.testing.assert_array_equal(back.apply(users), head.apply(users))
    assert back.fingerprint() == head.fingerprint()
    np.save(folder / "bias.npy", np.ones(DIM, dtype=np.float32))  # changed arrays: refused
    with pytest.raises(DataError, match="do not match the fingerprint"):
        ProjectionHead.load(folder)
    np.save(folder / "bias.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)  # a pickled object
    with pytest.raises(DataError, match="cannot be read"):
        ProjectionHead.load(folder)


class _Fixed:
    """A real fitted TF-IDF encoder, counting nothing: the base of a tuned encoder."""

    def __init__(self) -> None:
        self.inner = TfidfEncoder(n_components=3, min_df=1).fit(["space opera", "aliens", "a wedding", "paris love"])

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(
        self, texts: Sequence[TextInput], *, batch_size: int | None = None, show_progress: bool | None = None
    ) -> np.ndarray:
        return self.inner.encode(texts)


def test_tuned_encoder_applies_the_head_and_changes_its_name() -> None:
    base = _Fixed()
    rng = np.random.default_rng(0)
    head = ProjectionHead(rng.normal(size=(base.dim, base.dim)), rng.normal(size=base.dim))
    tuned = TunedEncoder(base, head)
    texts = ["space opera", "paris love"]
    np.testing.assert_allclose(tuned.encode(texts), head.apply(base.encode(texts)), atol=1e-6)
    assert tuned.name != base.name and head.fingerprint() in tuned.name and tuned.dim == base.dim
    assert TunedEncoder(base, ProjectionHead.identity(base.dim)).name != tuned.name
    with pytest.raises(ConfigError, match="the head is 2-d"):
        TunedEncoder(base, ProjectionHead.identity(2))


def test_config_errors_follow_the_template() -> None:
    with pytest.raises(ConfigError, match=r"The 'temperature' parameter of TuneConfig is invalid.*Got 0"):
        TuneConfig(temperature=0)
    with pytest.raises(ConfigError, match=r"The 'holdout' parameter of TuneConfig"):
        TuneConfig(holdout=0.7)
    with pytest.raises(ConfigError, match="TuneConfig has no parameter 'lr'"):
        TuneConfig(lr=0.1)  # type: ignore[call-arg]
    assert TuneConfig.model_validate_json(FAST.model_dump_json()) == FAST


def test_mismatched_inputs_are_refused() -> None:
    users, items, matrix = synthetic()
    with pytest.raises(DataError, match="the matrix is"):
        tune_head(users[:10], items, matrix, FAST)
    with pytest.raises(DataError, match="same d"):
        tune_head(users[:, :5], items, matrix, FAST)
