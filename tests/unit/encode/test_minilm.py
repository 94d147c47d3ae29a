"""all-MiniLM-L6-v2 on the fast path (int8 ONNX) and on sentence-transformers (the reference)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from personas.encode import Encoder, OnnxEncoder, SentenceTransformerEncoder
from personas.encode._onnx import fast_minilm
from personas.errors import ConfigError

TEXTS = [  # profiles and reviews of the kinds the pipeline encodes
    "a 31-year-old female engineer. liked: Blade Runner (1982) [Film-Noir Sci-Fi]; Heat (1995) [Action Crime]",
    "a 67-year-old retired male. liked: Casablanca (1942) [Drama Romance War]; Vertigo (1958) [Mystery Thriller]",
    "Science fiction films are my favourite",
    "The tablets stopped my headaches within two days; no side effects so far.",
    "ok",
]


@pytest.fixture(params=["onnx_int8", "onnx_batched", "sentence_transformer"])
def minilm(request: pytest.FixtureRequest) -> Encoder:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def test_minilm_meaning_orders_neighbours(minilm: Encoder) -> None:
    a, b, c = minilm.encode(["I love science fiction films", "sci-fi movies are my favourite", "I hate cooking"])
    assert a @ b > a @ c + 0.2


def test_int8_fast_path_matches_sentence_transformers(
    onnx_int8: OnnxEncoder, onnx_batched: OnnxEncoder, sentence_transformer: SentenceTransformerEncoder
) -> None:
    reference = sentence_transformer.encode(TEXTS)
    cosine = (onnx_int8.encode(TEXTS) * reference).sum(axis=1)
    assert cosine.min() > 0.98, cosine
    assert cosine.mean() > 0.99, cosine
    stored = (onnx_batched.encode(TEXTS) * reference).sum(axis=1)  # int8 weights, fp32 compute
    assert stored.min() > 0.995 and stored.mean() > 0.998, stored


def test_fast_path_model_is_fused_and_multiplies_in_int8(onnx_int8: OnnxEncoder) -> None:
    import onnx

    model = onnx.load(str(fast_minilm()))
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("QAttention") == 6  # one int8 q/k/v projection + attention per layer
    assert ops.count("MatMulInteger") == 12  # 6 layers x (attention out, ffn in)
    assert ops.count("MatMul") == 6  # the ffn down-projections stay fp32 (quality)
    assert ops.count("SkipLayerNormalization") == 12 and ops.count("BiasGelu") == 6
    assert {p.key: p.value for p in model.metadata_props}["personas.quantization"] == "dynamic-int8"


def test_encoder_names_identify_model_and_settings(onnx_int8: OnnxEncoder) -> None:
    assert onnx_int8.name == OnnxEncoder(threads=2).name  # threads do not change the vectors
    assert onnx_int8.name != OnnxEncoder(max_length=64).name
    assert onnx_int8.name != OnnxEncoder(quantize=False).name  # fp32 is another model file
    assert "len256" in onnx_int8.name


def test_bad_parameters_raise_config_errors(onnx_int8: OnnxEncoder) -> None:
    with pytest.raises(ConfigError, match=r"'batch_size' parameter of OnnxEncoder.encode must be an int >= 1"):
        onnx_int8.encode(["x"], batch_size=0)
    with pytest.raises(ConfigError, match="'max_length' parameter of OnnxConfig is invalid: input should be greater"):
        OnnxEncoder(max_length=1)
    with pytest.raises(ConfigError, match=r"not-a-model-package.*neither an existing path nor an installed"):
        OnnxEncoder("not-a-model-package").encode(["x"])
    with pytest.raises(ConfigError, match=r"'threads' parameter of OnnxConfig is invalid.*Got 0 instead"):
        OnnxEncoder(threads=0)
    with pytest.raises(ConfigError, match=r"'device' parameter of SentenceTransformerConfig is invalid.*'tpu'"):
        SentenceTransformerEncoder(device="tpu")
    with pytest.raises(ConfigError, match="OnnxConfig has no parameter 'thread'"):
        OnnxEncoder(thread=1)


def test_cuda_request_falls_back_to_cpu_with_a_warning() -> None:
    import onnxruntime
    import torch

    if torch.cuda.is_available() or "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("a usable CUDA GPU is present here; the fallback is for machines without one")
    for encoder, says in [
        (SentenceTransformerEncoder(device="cuda", threads=1), "sees no CUDA GPU"),
        (OnnxEncoder(device="cuda", threads=1), "has no CUDAExecutionProvider"),
    ]:
        with pytest.warns(RuntimeWarning, match=f"device='cuda' was asked for but .*{says}.*on the CPU instead"):
            vector = encoder.encode(["hello"])
        assert vector.shape == (1, 384)
        assert encoder.device == "cpu"  # type: ignore[attr-defined]
        assert ":cuda" not in encoder.name and ":fp16" not in encoder.name
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "auto" without a GPU is the CPU, silently
        assert OnnxEncoder(device="auto", threads=1).device == "cpu"


def test_worker_threads_do_not_change_vectors(onnx_int8: OnnxEncoder) -> None:
    texts = [f"text number {i} " * (i % 7 + 1) for i in range(12)]
    np.testing.assert_array_equal(OnnxEncoder(threads=2).encode(texts), onnx_int8.encode(texts))
