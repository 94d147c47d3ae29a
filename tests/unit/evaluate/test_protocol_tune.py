"""The tuned text space of an evaluation split: trained on the split's train data only, seeded, and applied to
items and to users' texts alike."""

from __future__ import annotations

import numpy as np
import pytest

from personas.data import Dataset, item_documents
from personas.encode import TfidfEncoder, TuneConfig, TunedEncoder
from personas.errors import ConfigError
from personas.evaluate.protocols import run_protocol, tuned_text_space
from personas.evaluate.splits import ColdUsers

FAST = TuneConfig(epochs=2, batch_size=16, device="cpu")


def test_the_head_sees_only_train_users_and_their_train_items(synthetic: Dataset) -> None:
    dataset = synthetic
    split = ColdUsers(seed=0).split(dataset)
    documents = item_documents(dataset)
    encoder = TfidfEncoder(n_components=8, min_df=1).fit([*documents, "space opera fan", "romance reader"])
    items = np.asarray(encoder.encode(documents), dtype=np.float64)
    tuned, tuned_items, evidence = tuned_text_space(split.train, encoder, items, FAST, seed=0)
    train = split.train.matrix("binary")
    per_user = np.diff(train.indptr)
    assert not per_user[split.users].any()  # held-out users have nothing in train ...
    assert evidence["users_with_text"] == int((per_user > 0).sum())  # ... and no (text, item) pair
    expected = train.nnz + int(np.maximum(per_user - 1, 0).sum())  # (user, item) + (item, next item) pairs
    assert evidence["pairs"]["train"] + evidence["pairs"]["held_out"] == expected
    assert isinstance(tuned, TunedEncoder) and tuned_items.dtype == np.float64
    np.testing.assert_allclose(tuned_items, tuned.head.apply(items), atol=1e-6)
    np.testing.assert_allclose(
        tuned.encode(["romance reader"]), tuned.head.apply(encoder.encode(["romance reader"])), atol=1e-6
    )
    again, _, _ = tuned_text_space(split.train, encoder, items, FAST, seed=0)
    assert again.head.fingerprint() == tuned.head.fingerprint()


def test_tuning_needs_a_text_encoder(synthetic: Dataset) -> None:
    with pytest.raises(ConfigError, match="'tune' parameter of run_protocol needs a text encoder"):
        run_protocol(synthetic, "cold-users", tune=True)
