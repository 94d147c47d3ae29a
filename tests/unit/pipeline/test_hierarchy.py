"""Two levels of personas in a run: four sub-tastes nested in two tastes, kept in the run folder, described at
both levels, shown by `personas describe` and the report, and a new user placed at both levels."""

from __future__ import annotations

import json
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from personas.api.testing import SUB_TASTES, write_tree_run
from personas.cli import app
from personas.config import Settings
from personas.describe import personas_from_json
from personas.pipeline import Pipeline, load_config, load_run

SUBS = {sub: taste for taste, subs in SUB_TASTES.items() for sub in subs}


@pytest.fixture(scope="module")
def tree_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree_run(tmp_path_factory.mktemp("tree") / "run", report=True)


def test_the_run_folder_keeps_a_two_by_two_tree(tree_run: Path) -> None:
    run = load_run(tree_run)
    users = run.users
    fine_of = dict(zip(users["user_id"], users["persona"], strict=True))
    coarse_of = dict(zip(users["user_id"], users["coarse_persona"], strict=True))
    # each fine persona is one sub-taste, each coarse persona one taste
    for sub, taste in SUBS.items():
        assert len({fine_of[f"{sub}-{j}"] for j in range(10)}) == 1
        assert len({coarse_of[f"{s}-{j}"] for s, t in SUBS.items() if t == taste for j in range(10)}) == 1
    assert users["persona"].nunique() == 4 and users["coarse_persona"].nunique() == 2
    fine, coarse = run.personas, run.coarse_personas
    assert [len(c.children) for c in coarse] == [2, 2]
    assert all(p.level == "fine" and p.parent is not None for p in fine)
    for p in fine:  # nested: a user's coarse persona is their fine persona's parent
        assert set(users.loc[users["persona"] == p.group, "coarse_persona"]) == {p.parent}
        assert p.group in coarse[p.parent].children
    assert sum(c.size for c in coarse) == sum(p.size for p in fine) == 40
    assert all(c.name and c.level == "coarse" for c in coarse)  # described: named cards at both levels
    # how each k was chosen, the tree, and how stability was measured
    tree = run.manifest["hierarchy"]
    assert tree["fine"] == {"k": 4, "chosen_by": "[discover] k"}
    assert tree["coarse"]["k"] == 2 and "silhouette" in tree["coarse"]["chosen_by"]["rule"]
    assert [s["k"] for s in tree["coarse"]["chosen_by"]["scores"]] == [2, 3]
    assert tree["parent"] == [p.parent for p in fine]
    stability = run.manifest["stability"]
    assert stability["n_runs"] == 3 and stability["threshold"] == 0.6 and "Jaccard" in stability["method"]
    assert [p.stability for p in fine] == pytest.approx(stability["fine"], abs=1e-4)
    assert all(p.stability == pytest.approx(1.0) and not p.unstable for p in [*fine, *coarse])


def test_the_report_shows_the_tree_with_sizes_names_and_stability(tree_run: Path) -> None:
    html = (tree_run / "report.html").read_text(encoding="utf-8")
    run = load_run(tree_run)
    assert "Persona tree" in html and "Coarse personas (for reading)" in html
    for persona in [*run.coarse_personas, *run.personas]:
        assert html_escape(persona.display_name, quote=True) in html
    assert html.count("class='tree-coarse'") == 2 and html.count("class='tree-fine'") == 4
    assert "stability 1.00" in html and "Number of personas at each level" in html


def test_describe_prints_the_tree_and_both_levels(tree_run: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["describe", str(tree_run)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    run = load_run(tree_run)
    assert "2 coarse personas, 4 fine personas" in result.stdout
    for persona in [*run.coarse_personas, *run.personas]:
        assert persona.display_name in result.stdout
    assert "stability 1.00" in result.stdout and "in coarse persona" in result.stdout
    data = json.loads(runner.invoke(app, ["describe", str(tree_run), "--json"]).stdout)
    assert [len(c["children"]) for c in data["coarse"]] == [2, 2]
    assert [p["parent"] for p in data["fine"]] == [p.parent for p in run.personas]
    coarse_only = runner.invoke(app, ["describe", str(tree_run), "--level", "coarse", "--json"])
    assert len(json.loads(coarse_only.stdout)) == 2
    wrong = runner.invoke(app, ["describe", str(tree_run), "--level", "middle"])
    assert wrong.exit_code == 1 and "--level must be one of all, coarse, fine" in wrong.output


def test_a_new_user_is_placed_at_both_levels(tree_run: Path) -> None:
    run = load_run(tree_run)
    model = run.model("router")
    fine_of = dict(zip(run.users["user_id"], run.users["persona"], strict=True))
    placed = run.place(model, history=["sku-steel-giants", "sku-mech-force", "sku-android-dawn"])
    assert placed.fine == fine_of["robots-0"]
    assert placed.coarse == run.coarse_of(fine_of["robots-0"]) == run.coarse_of(fine_of["aliens-0"])
    nothing = run.place(model)
    assert (nothing.fine, nothing.coarse) == (None, None)
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["recommend", "--model", str(tree_run), "--items", "sku-vault-raid,sku-bank-job", "--n", "3"],
        env={"COLUMNS": "300"},
    )
    assert result.exit_code == 0, result.output
    heists = run.personas[fine_of["heists-0"]]
    crime = run.coarse_personas[heists.parent or 0]
    assert f"persona {heists.group} ({heists.display_name}), in coarse persona {crime.group}" in result.stdout


def test_fine_k_by_validation_and_a_resumed_run_keeps_both_levels(tmp_path: Path) -> None:
    folder = write_tree_run(tmp_path / "run", k=None)
    run = load_run(folder)
    chosen = run.manifest["hierarchy"]["fine"]["chosen_by"]
    assert [s["k"] for s in chosen["scores"]] == [2, 4, 6]
    ndcg = {s["k"]: s["ndcg"] for s in chosen["scores"]}
    assert chosen["k"] == run.manifest["hierarchy"]["fine"]["k"] == len(run.personas)
    assert ndcg[chosen["k"]] >= max(ndcg.values()) * 0.99  # within the tolerance of the best
    assert ndcg[4] > ndcg[2]  # sub-tastes recommend better than tastes
    assert "held out" in chosen["protocol"] and "NDCG@10" in chosen["metric"]
    config = load_config(tmp_path / "run-data" / "run.toml")
    settings = Settings(home=tmp_path / "run-data" / "home")
    again = Pipeline(config, settings=settings, console=Console(quiet=True), resume=True).run()
    assert "discover groups" in again.reused and "describe personas" in again.reused
    assert again.coarse_labels is not None
    assert np.array_equal(again.coarse_labels, load_run(folder).users["coarse_persona"].to_numpy())
    assert len(again.coarse_personas) == len(personas_from_json(folder / "coarse_personas.json"))
    assert load_run(folder).manifest["hierarchy"] == run.manifest["hierarchy"]
