"""[discover] tree = "top-down" in a run: the coarse personas are k-means groups of the users' text vectors and
the fine ones are found inside each; kept in the run folder, resumed, used by the evaluation's train-only groups,
and new users placed at both levels by their text. Same tiny data as test_hierarchy (four sub-tastes in two
tastes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from personas.api.testing import SUB_TASTES, write_tree_run
from personas.config import Settings
from personas.data import build_profiles
from personas.discover import KMeansGroups, top_down
from personas.errors import ConfigError
from personas.pipeline import Pipeline, load_config, load_run

SUBS = {sub: taste for taste, subs in SUB_TASTES.items() for sub in subs}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(bottom-up run, top-down run of the same data and config but the tree, the top-down config file)."""
    root = tmp_path_factory.mktemp("topdown")
    bottom_up = write_tree_run(root / "bu", k=4)
    data = root / "bu-data"
    toml = (data / "run.toml").read_text(encoding="utf-8")
    toml = toml.replace("hierarchy = true", 'hierarchy = true\ntree = "top-down"')
    toml = toml.replace(f'dir = "{bottom_up.as_posix()}"', f'dir = "{(root / "td").as_posix()}"')
    config = data / "top-down.toml"
    config.write_text(toml, encoding="utf-8")
    Pipeline(load_config(config), settings=Settings(home=data / "home"), console=Console(quiet=True)).run()
    return bottom_up, root / "td", config


def test_the_coarse_personas_are_kmeans_of_the_text_vectors_and_nest_the_fine_ones(
    runs: tuple[Path, Path, Path],
) -> None:
    bottom_up, folder, _ = runs
    run = load_run(folder)
    users = run.users
    fine, coarse = users["persona"].to_numpy(), users["coarse_persona"].to_numpy()
    # coarse: the run's k-means (same seed) of its saved text vectors
    text = np.load(folder / "text_vectors.npy")
    assert np.array_equal(coarse, KMeansGroups(k=run.manifest["hierarchy"]["coarse"]["k"], seed=0).fit(text).labels_)
    # here the two tastes, each split into its two sub-tastes
    fine_of = dict(zip(users["user_id"], fine, strict=True))
    coarse_of = dict(zip(users["user_id"], coarse, strict=True))
    for sub, taste in SUBS.items():
        assert len({fine_of[f"{sub}-{j}"] for j in range(10)}) == 1
        assert len({coarse_of[f"{s}-{j}"] for s, t in SUBS.items() if t == taste for j in range(10)}) == 1
    parent = np.array([p.parent for p in run.personas])
    assert np.array_equal(parent[fine], coarse)  # every fine persona in exactly one coarse persona
    assert [len(c.children) for c in run.coarse_personas] == [2, 2]
    # the manifest says which tree; the coarse k was chosen on the text vectors, stability by top-down refits
    tree = run.manifest["hierarchy"]
    assert tree["tree"] == "top-down" and run.tree_kind == "top-down"
    assert "text vectors" in tree["coarse"]["chosen_by"]["rule"]
    assert "top-down" in run.manifest["stability"]["method"] and len(run.manifest["stability"]["coarse"]) == 2
    assert all(p.stability is not None for p in [*run.personas, *run.coarse_personas])
    # bottom-up (the default) writes what it wrote before: no tree key, no text-space coarse centroids
    before = load_run(bottom_up)
    assert "tree" not in before.manifest["hierarchy"] and before.tree_kind == "bottom-up"
    assert "tree" not in before.manifest["config"]["discover"]  # so its stage keys are unchanged too
    assert run.manifest["config"]["discover"]["tree"] == "top-down"
    assert not (bottom_up / "coarse_text_centroids.npy").exists() and (folder / "coarse_text_centroids.npy").exists()


def test_a_new_user_is_placed_by_text_in_the_nearest_coarse_persona_and_one_of_its_children(
    runs: tuple[Path, Path, Path],
) -> None:
    _, folder, _ = runs
    run = load_run(folder)
    encoder = run.text_encoder()
    assert encoder is None  # TF-IDF runs keep no encoder: place by a vector in the run's text space
    text = np.load(folder / "text_vectors.npy")
    coarse_centroids = np.load(folder / "coarse_text_centroids.npy")
    rows = {uid: i for i, uid in enumerate(run.users["user_id"])}
    # a user whose words are half robots, half heists: the text decides the coarse persona
    vector = text[rows["robots-0"]] + 0.9 * text[rows["heists-0"]]
    vector /= np.linalg.norm(vector)
    coarse, fine = run.place_vector(vector)
    assert coarse == int(np.argmax(coarse_centroids @ vector))
    assert run.coarse_of(fine) == coarse  # fine and coarse always agree
    placed = run.place(run.model("router"), vector=vector)
    assert (placed.coarse, placed.fine) == (coarse, fine)
    # a member's own text vector gives back their own personas
    own = run.place_vector(text[rows["heists-3"]])
    users = run.users.set_index("user_id")
    assert own == (users.loc["heists-3", "coarse_persona"], users.loc["heists-3", "persona"])


def test_the_run_resumes_and_the_evaluation_groups_are_top_down_groups(runs: tuple[Path, Path, Path]) -> None:
    _, folder, config_path = runs
    config = load_config(config_path)
    settings = Settings(home=config_path.parent / "home")
    pipeline = Pipeline(config, settings=settings, console=Console(quiet=True), resume=True)
    again = pipeline.run()
    assert "discover groups" in again.reused
    assert pipeline.tree_ is not None and pipeline.tree_.kind == "top-down"
    assert again.coarse_labels is not None
    assert np.array_equal(again.coarse_labels, load_run(folder).users["coarse_persona"].to_numpy())
    # the evaluation's groups of a train split: the same top-down procedure on the split's vectors
    dataset = again.dataset
    train = dataset.subset_interactions(np.arange(dataset.n_interactions) % 3 != 0, name="train")
    labels = pipeline.groups_for(train, 3)
    vectors, _, text = pipeline.encode(train, build_profiles(train, config.profiles))
    assert text is not None
    expected = top_down(vectors, text, 2, 3, KMeansGroups(k=2, seed=0))
    assert np.array_equal(labels, expected.fine_labels)
    assert np.array_equal(expected.parent[labels], expected.coarse_labels)


@pytest.mark.parametrize(
    ("discover", "encode", "message"),
    [
        ('tree = "top-down"\n', "", r"'tree' parameter of \[discover\] = \"top-down\" needs hierarchy = true"),
        (
            'tree = "top-down"\nhierarchy = true\nmethod = "hdbscan"\n',
            "",
            r"needs hierarchy = true and method = \"kmeans\". Got hierarchy = true, method = 'hdbscan'",
        ),
        ('tree = "top-down"\nhierarchy = true\n', "behaviour_weight = 1.0\n", r"behaviour_weight = 1 encodes no text"),
        ('tree = "sideways"\nhierarchy = true\n', "", r"tree"),
    ],
)
def test_bad_tree_settings_are_refused_in_one_line(tmp_path: Path, discover: str, encode: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'[data]\ndataset = "ml-100k"\n[encode]\n{encode}[discover]\n{discover}')
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert "\n" not in str(info.value).strip()


def test_the_service_places_a_new_users_text_vector_top_down(runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    from personas.api import PersonaService, ServeSettings

    _, folder, _ = runs
    run = load_run(folder)
    settings = ServeSettings(model_dir=folder, database_url=f"sqlite:///{tmp_path / 'serve.sqlite'}")
    service = PersonaService(settings)
    try:
        text = np.load(folder / "text_vectors.npy")
        rows = {uid: i for i, uid in enumerate(run.users["user_id"])}
        vector = text[rows["aliens-1"]] + 0.9 * text[rows["heists-1"]]
        vector = (vector / np.linalg.norm(vector)).astype(np.float32)
        coarse, fine = run.place_vector(vector)
        assert service._place(None, vector, np.zeros(0, dtype=np.int64)) == fine
        brief = service._coarse_brief(fine)
        assert brief is not None and brief.group == coarse
    finally:
        service.storage.close()
