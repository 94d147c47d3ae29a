"""Issue 16, problem 1: a run that fails late keeps its finished stages, says how to resume, and resumes;
evaluation the data cannot support is skipped with a hint, and the run completes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from personas.config import Settings
from personas.errors import DataError
from personas.pipeline import Pipeline, load_config, load_run
from personas.pipeline.run import PipelineResult

ONE_PER_USER = Path(__file__).parents[2] / "data" / "newcomer" / "one_per_user"


def _pipeline(config_path: Path, tmp_path: Path, **kwargs: Any) -> tuple[Pipeline, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, width=400, color_system=None)
    pipeline = Pipeline(load_config(config_path), settings=Settings(home=tmp_path / "home"), console=console, **kwargs)
    return pipeline, out


def _boom(self: Pipeline, result: PipelineResult) -> None:
    raise RuntimeError("the evaluation ran out of memory")


def test_a_failed_last_stage_keeps_a_usable_run_and_resume_reuses_it(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_config: Any
) -> None:
    config = make_config(shop)
    folder = shop / "run"
    monkeypatch.setattr(Pipeline, "evaluate", _boom)
    pipeline, out = _pipeline(config, tmp_path, command="personas run run.toml --resume")
    with pytest.raises(RuntimeError, match="out of memory"):
        pipeline.run()
    # Before: no folder at all. Now: the finished stages, checksummed, marked incomplete, with the way back.
    run = load_run(folder)
    manifest = run.manifest
    assert manifest["status"] == "incomplete" and manifest["failed_stage"] == "evaluate"
    assert manifest["error"] == "RuntimeError: the evaluation ran out of memory"
    assert manifest["resume"] == "personas run run.toml --resume"
    stages = ["describe personas", "discover groups", "encode", "fit recommenders", "load data"]
    assert sorted(manifest["stages"]) == stages
    assert len(run.personas) == 3 and sorted(manifest["models"]) == ["ease", "group-popular", "most-popular"]
    ids, _ = run.model("ease").recommend(["cust-space-0"], n=3)  # usable: the saved model recommends
    assert ids.shape == (1, 3)
    text = out.getvalue()
    assert "evaluate failed" in text and "personas run run.toml --resume" in text and str(folder) in text
    labels = run.users["persona"].to_numpy()

    # Resume: every finished stage is reused (encoding again would fail here), only evaluation runs.
    monkeypatch.undo()

    def ran_again(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished stage ran again")

    # (Pipeline.encode itself is called by the evaluation, which computes groups on its train split.)
    for stage in ("encode_items", "encode_sides", "discover", "describe", "fit_models"):
        monkeypatch.setattr(Pipeline, stage, ran_again)
    resumed, out = _pipeline(config, tmp_path, resume=True)
    result = resumed.run()
    assert result.reused == ["encode", "discover groups", "describe personas", "fit recommenders"]
    assert np.array_equal(result.labels, labels)
    assert result.metrics is not None and "NDCG@10" in result.metrics.columns
    done = load_run(folder)
    assert done.manifest["status"] == "complete" and "metrics.json" in done.manifest["files"]
    assert "reused from" in out.getvalue()

    # A complete run resumes to itself without any work, evaluation included.
    monkeypatch.setattr(Pipeline, "evaluate", _boom)
    again = _pipeline(config, tmp_path, resume=True)[0].run()
    assert again.reused[-1] == "evaluate" and again.metrics is not None


def test_resume_reruns_what_a_changed_config_section_reads(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_config: Any
) -> None:
    config = make_config(shop, extra="[evaluate]\nenabled = false")
    _pipeline(config, tmp_path)[0].run()
    changed = make_config(shop, extra='[evaluate]\nenabled = false\n[recommend]\nmodels = ["most-popular", "item-knn"]')
    result = _pipeline(changed, tmp_path, resume=True)[0].run()
    assert result.reused == ["encode", "discover groups", "describe personas"]
    assert load_run(shop / "run").manifest["models"] == ["item-knn", "most-popular"]


def test_resume_refuses_a_tampered_run(shop: Path, tmp_path: Path, make_config: Any) -> None:
    config = make_config(shop, extra="[evaluate]\nenabled = false")
    _pipeline(config, tmp_path)[0].run()
    vectors = shop / "run" / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:-4] + b"\x00\x00\x80\x7f")
    with pytest.raises(DataError, match=r"Cannot resume: .*changed: vectors\.npy.*without --resume"):
        _pipeline(config, tmp_path, resume=True)[0].run()


def _one_per_user_config(tmp_path: Path, evaluate: str = "") -> Path:
    path = tmp_path / "my.toml"
    path.write_text(
        f"""
[data]
interactions = "{ONE_PER_USER / "interactions.csv"}"
users = "{ONE_PER_USER / "users.csv"}"
items = "{ONE_PER_USER / "items.csv"}"
[encode]
kind = "tfidf"
[discover]
k = 4
[output]
dir = "{tmp_path / "runs" / "x"}"
report = false
{evaluate}
"""
    )
    return path


def test_one_interaction_per_user_skips_evaluation_with_a_toml_hint_and_completes(tmp_path: Path) -> None:
    pipeline, out = _pipeline(_one_per_user_config(tmp_path), tmp_path)
    result = pipeline.run()  # before: DataError "TemporalSplit left no test users", and no run folder
    text = " ".join(out.getvalue().split())
    assert "evaluation skipped: the warm protocol" in text
    assert "needs users with at least 5 interactions; 0 of the 40 users" in text
    assert "the most any user has is 1" in text
    # The hint names settings that exist in the TOML, in TOML form.
    assert '[evaluate] protocol = "cold-users"' in text and "[evaluate] enabled = false" in text
    assert "min_interactions" not in text.split("To evaluate")[1]  # 2 would not help: nobody has 2
    run = load_run(tmp_path / "runs" / "x")
    assert run.manifest["status"] == "complete"
    assert run.manifest["evaluation"]["status"] == "skipped" and len(run.personas) == 4
    assert result.metrics is None


def test_the_hinted_protocol_runs_from_the_toml(tmp_path: Path) -> None:
    config = _one_per_user_config(
        tmp_path,
        '[evaluate]\nprotocol = "cold-users"\ntest_fraction = 0.25\n'
        '[recommend]\nmodels = ["most-popular", "group-popular", "router"]',
    )
    result = _pipeline(config, tmp_path)[0].run()
    assert result.metrics is not None and "router" in result.metrics.index
    assert result.experiment is not None and len(result.experiment.users) == 10  # 25% of 40 users held out whole
    manifest = load_run(tmp_path / "runs" / "x").manifest
    assert manifest["evaluation"] == {"status": "ran", "protocol": "cold-users", "splits": ["cold-users"]}
    assert json.loads((tmp_path / "runs" / "x" / "metrics.json").read_text())["protocol"]["protocol"] == "cold-users"


@pytest.mark.parametrize("protocol", ["few-shot", "few-shot-new", "cold-items"])
def test_every_protocol_is_accepted_from_the_toml(protocol: str, shop: Path, tmp_path: Path, make_config: Any) -> None:
    config = make_config(shop, extra=f'[evaluate]\nprotocol = "{protocol}"\nn_shots = [1, 2]\nmin_interactions = 4')
    result = _pipeline(config, tmp_path)[0].run()
    assert result.evaluation["status"] == "ran", result.evaluation
    expected = [f"{protocol}-1", f"{protocol}-2"] if protocol.startswith("few") else [protocol]
    assert [label for label, _ in result.experiments] == expected


def test_the_toml_the_cli_and_the_protocols_know_the_same_protocols() -> None:
    from typing import get_args

    from personas.evaluate.feasibility import PROTOCOL_NAMES
    from personas.evaluate.protocols import PROTOCOLS
    from personas.pipeline.config import EvaluateSection

    assert PROTOCOL_NAMES == PROTOCOLS == get_args(EvaluateSection.model_fields["protocol"].annotation)


def test_resume_reuses_a_tuned_text_space_with_its_head(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_config: Any
) -> None:
    from personas.encode import TunedEncoder

    tuned = 'kind = "minilm"\ntune = true\n[encode.tune_options]\nepochs = 2\nbatch_size = 32\ndevice = "cpu"\n'
    config = make_config(shop, extra="[evaluate]\nenabled = false")
    config.write_text(config.read_text().replace('kind = "tfidf"\n', tuned))
    first = _pipeline(config, tmp_path)[0]
    first.run()
    changed = config.read_text() + '[recommend]\nmodels = ["group-popular", "router"]\n'
    config.write_text(changed)

    def ran_again(*args: object, **kwargs: object) -> None:
        raise AssertionError("the text space was tuned again")

    monkeypatch.setattr(Pipeline, "tune", ran_again)
    resumed = _pipeline(config, tmp_path, resume=True)[0]
    result = resumed.run()
    assert result.reused == ["encode", "discover groups", "describe personas"]
    run = load_run(shop / "run")
    assert run.manifest["encoder"]["head"] == "encoder_head" and "encoder_head/weight.npy" in run.manifest["files"]
    encoder = run.text_encoder()
    assert isinstance(encoder, TunedEncoder)
    assert float(encoder.encode([result.texts[0]])[0] @ first.text_vectors_[0]) > 0.9999
