"""The pipeline on small data in another shape: config errors, artefacts, tampering, interruption."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from personas.errors import ConfigError, DataError
from personas.pipeline import load_config, load_run

TASTES = ("space", "romance", "crime")


def test_users_own_csv_end_to_end_and_round_trip(
    shop: Path, tmp_path: Path, make_config: Any, run_pipeline: Any
) -> None:
    pipeline = run_pipeline(make_config(shop, report="true"), tmp_path)
    result = pipeline.result  # type: ignore[attr-defined]
    # Three tastes written in the bios and shown in behaviour: three groups, each one taste.
    labels = dict(zip(result.dataset.user_vocab.ids, result.labels, strict=True))
    for taste in TASTES:
        assert len({labels[f"cust-{taste}-{j}"] for j in range(12)}) == 1
    assert len(set(labels.values())) == 3
    assert result.metrics is not None and "NDCG@10" in result.metrics.columns  # evaluated without timestamps
    run_folder = shop / "run"
    artefact = load_run(run_folder)
    assert artefact.manifest["dataset"]["fingerprint"] == result.dataset.fingerprint()
    assert len(artefact.personas) == 3
    assert (run_folder / "report.html").stat().st_size > 100_000
    # Loaded models recommend exactly what the fitted ones did.
    users = list(result.dataset.user_vocab.ids[:10])
    for name, model in result.models.items():
        ids, scores = model.recommend(users, 5)
        loaded_ids, loaded_scores = artefact.model(name).recommend(users, 5)
        assert np.array_equal(ids, loaded_ids), name
        assert np.array_equal(scores, loaded_scores), name


def test_same_config_same_groups(shop: Path, tmp_path: Path, make_config: Any, run_pipeline: Any) -> None:
    config = make_config(shop, encode="behaviour_weight = 0.3", extra="[evaluate]\nenabled = false")
    first = run_pipeline(config, tmp_path).result.labels  # type: ignore[attr-defined]
    second = run_pipeline(config, tmp_path).result.labels  # type: ignore[attr-defined]
    assert np.array_equal(first, second)


def test_tampered_or_partial_folder_is_refused(shop: Path, tmp_path: Path, make_config: Any, run_pipeline: Any) -> None:
    run_pipeline(make_config(shop, extra="[evaluate]\nenabled = false"), tmp_path)
    folder = shop / "run"
    users = folder / "users.parquet"
    users.write_bytes(users.read_bytes() + b"x")
    with pytest.raises(DataError, match=r"does not match its manifest \(changed: users.parquet\)"):
        load_run(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(DataError, match=r"no manifest\.json"):
        load_run(folder)


def test_interrupted_run_leaves_previous_artefact_intact(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_config: Any, run_pipeline: Any
) -> None:
    config = make_config(shop, extra="[evaluate]\nenabled = false")
    run_pipeline(config, tmp_path)
    before = json.loads((shop / "run" / "manifest.json").read_text())["files"]

    def interrupted(self: object, folder: Path) -> Path:
        raise KeyboardInterrupt  # Ctrl-C while the models are being written

    from personas.recommend import Recommender

    monkeypatch.setattr(Recommender, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(config, tmp_path)
    artefact = load_run(shop / "run")  # still verifies: the old folder was never touched
    assert artefact.manifest["files"] == before
    # The interrupted run's finished stages are kept beside it (never over a finished run), nothing else.
    assert sorted(p.name for p in shop.iterdir()) == [
        "customers.csv",
        "orders.csv",
        "products.csv",
        "run",
        "run.incomplete",
        "run.toml",
    ]
    kept = load_run(shop / "run.incomplete")
    assert kept.manifest["status"] == "incomplete" and kept.manifest["failed_stage"] == "fit recommenders"
    assert kept.manifest["error"] == "interrupted (Ctrl-C)" and kept.manifest["models"] == []
    assert not (shop / "run.incomplete" / "models").exists()  # the half-saved models are not kept
    assert len(kept.personas) == 3
    with pytest.raises(DataError, match=r"saved no recommender\. It is incomplete .*'fit recommenders' failed"):
        kept.model()


ML = '[data]\ndataset = "ml-100k"\n'
BAD_CONFIGS = [
    (
        ML + '[discover]\nmethod = "kmedoids"\n',
        r"The 'method' parameter of \[discover\] is invalid: input should be 'kmeans'",
    ),
    (ML + "[discover]\nkk = 3\n", r"\[discover\] has no parameter 'kk'"),
    (ML + "[discover]\nk = 1\n", r"The 'k' parameter of \[discover\] must be an int >= 2"),
    (
        ML + "[encode]\nbehaviour_weight = 2\n",
        r"The 'behaviour_weight' parameter of \[encode\] must be a float in \[0, 1\] or \"auto\". Got 2.0",
    ),
    ('[data]\n[encode]\nkind = "tfidf"\n', "exactly one of 'dataset'"),
    (
        ML + '[recommend]\nmodels = ["bert4rec"]\n',
        r"The 'models.0' parameter of \[recommend\] is invalid: input should be 'most-popular'",
    ),
    (ML + '[evaluate]\nprotocol = "cold"\n', r"The 'protocol' parameter of \[evaluate\] is invalid: .*'cold-users'"),
    (ML + "[evaluate]\nmin_interactions = 1\n", r"'min_interactions' parameter of \[evaluate\]"),
    (ML + "[typo]\nk = 1\n", r"the config file has no parameter 'typo'"),
    (
        ML + '[evaluate]\nprotocol = "few-shot"\nmin_interactions = 3\n',
        r"'min_interactions' parameter of \[evaluate\] must be more than the largest n_shots \(5\)",
    ),
    ("[data\n", "not valid TOML"),
    # the Spark engine's limits are refused when the config is read, not after minutes of work (models it does not
    # fit are fitted on its driver: tests/spark/test_driver_rule.py)
    (
        'engine = "spark"\n' + ML + '[discover]\nmethod = "hdbscan"\n[recommend]\nmodels = ["most-popular"]\n',
        r"method = 'hdbscan' runs on engine = \"local\"",
    ),
    (
        'engine = "spark"\ndriver_memory_gb = 0\n' + ML,
        r"The 'driver_memory_gb' parameter of the config file is invalid: input should be greater than 0",
    ),
    (ML + "[discover]\ncoarse_candidates = [1, 5]\n", r"'coarse_candidates' parameter of \[discover\] must be"),
    (ML + "[discover]\nstability_threshold = 2\n", r"'stability_threshold' parameter of \[discover\]"),
]


@pytest.mark.parametrize(("toml", "message"), BAD_CONFIGS)
def test_config_errors_name_the_key_and_allowed_values(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "Section" not in str(info.value) and "PipelineConfig" not in str(info.value)


def test_new_users_are_placed_by_text_and_served_by_the_router(
    shop: Path, tmp_path: Path, make_config: Any, run_pipeline: Any
) -> None:
    config = make_config(shop, extra='[evaluate]\nenabled = false\n[recommend]\nmodels = ["group-popular", "router"]')
    pipeline = run_pipeline(config, tmp_path)
    artefact = load_run(shop / "run")
    centroids = artefact.text_centroids()
    assert centroids is not None
    assert centroids.shape == (3, pipeline.text_vectors_.shape[1])
    # A member's own text vector lands in the member's persona.
    labels = pipeline.result.labels
    for row in (0, 12, 24):
        assert artefact.persona_of_vector(pipeline.text_vectors_[row]) == labels[row]
    router = artefact.model("router")
    ids, _ = router.recommend_new(history=["sku-star-voyage", "sku-alien-planet"], n=3)
    titles = set(artefact.items.set_index("item_id").loc[[artefact.items.item_id[i] for i in ids[0]], "title"])
    assert titles <= {"Robot Wars", "Galaxy Quest", "Moon Base", "Mars Colony"}  # the same taste, unseen items
    assert artefact.text_encoder() is None  # TF-IDF spaces are fitted per run and not reusable


def test_recommend_cli_from_a_run_folder_without_refitting(
    shop: Path, tmp_path: Path, make_config: Any, run_pipeline: Any
) -> None:
    from typer.testing import CliRunner

    from personas.cli import app

    config = make_config(shop, extra='[evaluate]\nenabled = false\n[recommend]\nmodels = ["group-popular", "router"]')
    run_pipeline(config, tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["recommend", "--model", str(shop / "run"), "--user", "cust-space-0", "--n", "3"])
    assert result.exit_code == 0, result.output
    assert "persona" in result.stdout and "Fitting" not in result.output
    result = runner.invoke(app, ["recommend", "--model", str(shop / "run"), "--items", "sku-moon-base", "--n", "3"])
    assert result.exit_code == 0, result.output
    assert "New user" in result.stdout
    (shop / "run" / "personas.json").write_text("[]")
    result = runner.invoke(app, ["recommend", "--model", str(shop / "run"), "--user", "cust-space-0"])
    assert result.exit_code == 1
    assert "does not match its manifest" in result.output
