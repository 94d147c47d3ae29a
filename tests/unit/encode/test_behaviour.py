"""Users from behaviour alone, and fused with text (tiny dataset with two obvious tastes)."""

from __future__ import annotations

import numpy as np
import pytest

from personas.data import Dataset
from personas.encode import BehaviourEncoder, FusionEncoder, OnnxEncoder, TfidfEncoder
from personas.errors import ConfigError, NotFittedError

SCIFI, ROMANCE = [0, 1, 2], [3, 4, 5]  # user rows of u1-u3 and u4-u6


def _separates(vectors: np.ndarray) -> bool:
    sims = vectors @ vectors.T
    within = min(sims[i, j] for block in (SCIFI, ROMANCE) for i in block for j in block)
    across = max(sims[i, j] for i in SCIFI for j in ROMANCE)
    return bool(within > across)


def test_svd_behaviour_vectors_separate_the_two_tastes(tiny: Dataset) -> None:
    encoder = BehaviourEncoder(n_components=2, value="binary").fit(tiny)
    assert encoder.vectors_.shape == (6, 2) == (tiny.n_users, encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(encoder.vectors_, axis=1), 1.0, atol=1e-6)
    assert _separates(encoder.vectors_)
    again = BehaviourEncoder(n_components=2, value="binary").fit(tiny)
    np.testing.assert_array_equal(again.vectors_, encoder.vectors_)
    assert again.name == encoder.name


def test_new_histories_fold_into_the_same_space(tiny: Dataset) -> None:
    encoder = BehaviourEncoder(n_components=2, value="binary").fit(tiny)
    own = encoder.encode_histories([["a", "b", "c", "d"], ["e", "f"]])  # u1's and u6's histories
    np.testing.assert_allclose(own, encoder.vectors_[[0, 5]], atol=1e-6)
    with pytest.warns(UserWarning, match="ignored 1 interaction"):
        new = encoder.encode_histories([{"a": 5.0, "zzz": 4.0}, []])
    assert new[0] @ encoder.vectors_[1] > new[0] @ encoder.vectors_[4]
    np.testing.assert_allclose(new[1], encoder.empty_vector_, atol=1e-6)  # no history: the average user


def test_item_text_behaviour_puts_users_in_text_space(tiny: Dataset, onnx_int8: OnnxEncoder) -> None:
    encoder = BehaviourEncoder(method="item-text", text_encoder=onnx_int8).fit(tiny)
    assert encoder.dim == 384
    assert _separates(encoder.vectors_)
    # The mean of a sci-fi user's items is closer to a sci-fi text than to a romance text.
    scifi_text, romance_text = onnx_int8.encode(["science fiction in space", "a romantic love story"])
    assert encoder.vectors_[0] @ scifi_text > encoder.vectors_[0] @ romance_text


def test_fusion_combines_text_and_behaviour(tiny: Dataset) -> None:
    texts = tiny.user_texts()
    text_encoder = TfidfEncoder(n_components=3).fit(texts)
    fusion = FusionEncoder(text_encoder, BehaviourEncoder(n_components=2), text_weight=0.25)
    fusion.fit(tiny, texts=texts)
    assert fusion.vectors_.shape == (6, fusion.dim) == (6, 3 + 2)
    text_part = text_encoder.encode(texts)
    behaviour_part = fusion.behaviour_encoder_.vectors_
    expected = 0.25 * (text_part @ text_part.T) + 0.75 * (behaviour_part @ behaviour_part.T)
    np.testing.assert_allclose(fusion.vectors_ @ fusion.vectors_.T, expected, atol=1e-5)
    new = fusion.encode_new(["I love space opera"], [["a"]])
    assert new.shape == (1, 5)
    assert new[0] @ fusion.vectors_[0] > new[0] @ fusion.vectors_[3]


def test_behaviour_errors(tiny: Dataset) -> None:
    with pytest.raises(NotFittedError, match=r"Call fit\(dataset\)"):
        BehaviourEncoder().encode_histories([["a"]])
    with pytest.raises(ConfigError, match="needs a text_encoder"):
        BehaviourEncoder(method="item-text").fit(tiny)
    with pytest.raises(ConfigError, match=r"'method' parameter of BehaviourConfig is invalid: .*'svd' or 'item-text'"):
        BehaviourEncoder(method="als").fit(tiny)  # type: ignore[arg-type]
    with pytest.raises(NotFittedError):
        _ = FusionEncoder(TfidfEncoder()).name
