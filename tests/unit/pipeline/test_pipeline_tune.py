"""``[encode] tune = true``: the head is trained, saved and checksummed in the run folder, and a loaded run puts
new users' texts through it; an untuned run is unchanged; bad tuning keys are refused naming the section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from personas.encode import TunedEncoder
from personas.errors import ConfigError, DataError
from personas.pipeline import load_config, load_run

TUNED = 'tune = true\n[encode.tune_options]\nepochs = 3\nbatch_size = 32\ndevice = "cpu"\n'
QUIET = '[evaluate]\nenabled = false\n[recommend]\nmodels = ["group-popular", "router"]'


def _minilm(path: Path) -> Path:
    path.write_text(path.read_text().replace('kind = "tfidf"', 'kind = "minilm"'))
    return path


def test_tuned_run_saves_the_head_and_load_run_reproduces_the_tuned_space(
    shop: Path, tmp_path: Path, make_config: Any, run_pipeline: Any
) -> None:
    pipeline = run_pipeline(_minilm(make_config(shop, encode=TUNED, extra=QUIET)), tmp_path)
    folder = shop / "run"
    artefact = load_run(folder)
    info = artefact.manifest["encoder"]
    assert info["head"] == "encoder_head" and info["tuning"]["epochs"] >= 1
    assert {"encoder_head/weight.npy", "encoder_head/bias.npy", "encoder_head/head.json"} <= set(
        artefact.manifest["files"]
    )
    assert f"head={pipeline.head_.fingerprint()}" in info["name"]
    encoder = artefact.text_encoder()
    assert isinstance(encoder, TunedEncoder)
    text = pipeline.result.texts[0]
    vector = encoder.encode([text])[0]
    # the loaded encoder gives the run's own (tuned) vector for a user's text, not the base model's
    assert float(vector @ pipeline.text_vectors_[0]) > 0.9999
    assert float(vector @ encoder.encoder.encode([text])[0]) < 0.9999
    np.testing.assert_allclose(np.load(folder / "text_vectors.npy"), pipeline.text_vectors_)
    assert artefact.persona_of_vector(vector) == pipeline.result.labels[0]

    weight = folder / "encoder_head" / "weight.npy"
    tampered = np.load(weight)
    tampered[0, 0] += 1.0
    np.save(weight, tampered)
    with pytest.raises(DataError, match=r"changed: encoder_head/weight\.npy"):
        load_run(folder)


def test_untuned_run_has_no_head_and_no_tuning_keys(
    shop: Path, tmp_path: Path, make_config: Any, run_pipeline: Any
) -> None:
    run_pipeline(make_config(shop, extra=QUIET), tmp_path)
    manifest = json.loads((shop / "run" / "manifest.json").read_text())
    assert "head" not in manifest["encoder"] and not (shop / "run" / "encoder_head").exists()
    assert "tune" not in manifest["config"]["encode"] and "tune_options" not in manifest["config"]["encode"]


@pytest.mark.parametrize(
    ("encode", "message"),
    [
        (
            "tune = true\n[encode.tune_options]\nlr = 0.1\n",
            r"\[encode\.tune_options\] has no parameter 'lr'",
        ),
        (
            "tune = true\n[encode.tune_options]\ntemperature = 0\n",
            r"The 'temperature' parameter of \[encode\.tune_options\] is invalid",
        ),
        ("tune = true\nbehaviour_weight = 1.0\n", r"'encode\.tune' parameter needs text"),
    ],
)
def test_bad_tuning_keys_are_refused_naming_the_section(
    shop: Path, make_config: Any, encode: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(make_config(shop, encode=encode))


def test_tuning_on_the_spark_engine_is_refused_not_ignored(shop: Path, make_config: Any) -> None:
    path = make_config(shop, encode="tune = true")
    path.write_text('engine = "spark"\n' + path.read_text())
    with pytest.raises(ConfigError, match=r"'encode\.tune' parameter needs engine = \"local\""):
        load_config(path)
