"""The streamed single-machine path against the in-memory one, on tiny data cut into many chunks."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from sklearn.metrics import adjusted_rand_score

from personas.data import build_profiles, load_dataset
from personas.describe import describe_groups, personas_from_json
from personas.discover import KMeansGroups
from personas.errors import ConfigError, DataError
from personas.pipeline import PipelineConfig
from personas.pipeline.artefact import load_run
from personas.pipeline.config import parse_size
from personas.pipeline.streamed import StreamedPipeline, plan_chunks, wants_streaming
from personas.recommend import Recommender
from personas.recommend.base import MostPopular
from personas.recommend.popular import GroupPopular

GENRES = ["Space", "Romance", "Crime"]


def make_files(folder: Path, n_users: int = 90, seed: int = 0, *, words: bool = True) -> dict[str, Path]:
    """Three tastes; users with ages, genders and (some) own words; interactions with ratings, times and
    (some) reviews; 12 items with genres; 8-d vectors pointing at each user's taste. ``words=False``: no
    genres, own words or reviews (keywords then come from the profile texts)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    taste = np.arange(n_users) % 3
    users = pd.DataFrame(
        {
            "user_id": [f"u{i:03d}" for i in range(n_users)],
            "age": rng.integers(15, 70, size=n_users).astype(str),
            "gender": np.where(taste == 1, "F", rng.choice(["M", "F"], size=n_users)),
            "text": [f"I love {GENRES[t].lower()} stories" if i % 4 == 0 else None for i, t in enumerate(taste)],
        }
    )
    items = pd.DataFrame(
        {
            "item_id": [f"i{j:02d}" for j in range(12)],
            "title": [f"{GENRES[j % 3]} film {j}" for j in range(12)],
            "genres": [f"{GENRES[j % 3]}|Drama" if j % 2 else GENRES[j % 3] for j in range(12)],
        }
    )
    rows = []
    for u in range(n_users):
        for k in range(6):
            item = int(taste[u] + 3 * rng.integers(4)) if k < 5 else int(rng.integers(12))
            review = f"a fine {GENRES[item % 3].lower()} evening" if (u + k) % 7 == 0 else None
            rows.append((f"u{u:03d}", f"i{item:02d}", float(rng.integers(1, 6)), int(1_000 + 10 * k + u), review))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp", "review"])
    inter = inter.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # not sorted by user
    if not words:
        items, users, inter = items.drop(columns="genres"), users.drop(columns="text"), inter.drop(columns="review")
    centres = np.eye(3, 8) * 3
    vectors = (centres[taste] + rng.normal(size=(n_users, 8))).astype(np.float32)
    paths = {name: folder / f"{name}.parquet" for name in ("interactions", "users", "items")}
    inter.to_parquet(paths["interactions"], index=False)
    users.to_parquet(paths["users"], index=False)
    items.to_parquet(paths["items"], index=False)
    paths["vectors"] = folder / "vectors.npy"
    np.save(paths["vectors"], vectors)
    return paths


def config_for(paths: dict[str, Path], out: Path, **extra: Any) -> PipelineConfig:
    return PipelineConfig.model_validate(
        {
            "streaming": "on",
            "data": {"interactions": paths["interactions"], "users": paths["users"], "items": paths["items"]},
            "discover": {"k": 3, "seed": 0},
            "recommend": {"models": ["most-popular", "group-popular"]},
            "evaluate": {"enabled": False},
            "output": {"dir": str(out), "report": False},
            **extra,
        }
    )


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return make_files(tmp_path / "data")


def test_streamed_run_matches_the_in_memory_path(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    StreamedPipeline(config_for(files, out), vectors=files["vectors"], console=quiet(), chunk_users=7).run()
    dataset, _ = load_dataset(files["interactions"], users=files["users"], items=files["items"])
    vectors = np.load(files["vectors"])
    users = pd.read_parquet(out / "users.parquet")
    assert users["user_id"].tolist() == [str(u) for u in dataset.user_vocab.ids]
    # k-means on all users (the sample holds them all): the in-memory labels exactly
    labels = KMeansGroups(k=3, seed=0).fit(vectors).labels_
    assert (users["persona"].to_numpy() == labels).all()
    texts = build_profiles(dataset)
    assert pd.read_parquet(out / "profiles.parquet")["text"].tolist() == texts
    ours = personas_from_json(out / "personas.json")
    theirs = describe_groups(labels, texts=texts, vectors=vectors, dataset=dataset)
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs, strict=True):
        assert a.model_dump(exclude={"representatives"}) == b.model_dump(exclude={"representatives"})
        assert [r.user_id for r in a.representatives] == [r.user_id for r in b.representatives]
        assert [r.quote for r in a.representatives] == [r.quote for r in b.representatives]
        np.testing.assert_allclose(
            [r.similarity for r in a.representatives], [r.similarity for r in b.representatives], atol=1e-6
        )
    assert any(p.keywords for p in ours) and any(p.attribute_skew for p in ours)
    ids = [str(u) for u in dataset.user_vocab.ids]
    for name, model in (
        ("most-popular", MostPopular().fit(dataset)),
        ("group-popular", GroupPopular().fit(dataset, groups=labels)),
    ):
        saved = Recommender.load(out / "models" / name)
        for got, want in zip(saved.recommend(ids, 5), model.recommend(ids, 5), strict=True):
            np.testing.assert_array_equal(got, want)
    run = load_run(out)  # the folder a server loads: checksummed, complete
    assert run.manifest["status"] == "complete" and run.manifest["streamed"]["chunks"] == 13
    np.testing.assert_array_equal(np.load(out / "vectors.npy"), vectors)


def test_without_descriptive_words_the_keywords_come_from_the_profile_texts(tmp_path: Path) -> None:
    files = make_files(tmp_path / "data", words=False)
    out = tmp_path / "run"
    StreamedPipeline(config_for(files, out), vectors=files["vectors"], console=quiet(), chunk_users=25).run()
    dataset, _ = load_dataset(files["interactions"], users=files["users"], items=files["items"])
    labels = pd.read_parquet(out / "users.parquet")["persona"].to_numpy()
    theirs = describe_groups(labels, texts=build_profiles(dataset), vectors=np.load(files["vectors"]), dataset=dataset)
    ours = personas_from_json(out / "personas.json")
    assert [p.keywords for p in ours] == [p.keywords for p in theirs]
    assert [p.name for p in ours] == [p.name for p in theirs]
    assert any("space" in k.term for p in ours for k in p.keywords)  # from the liked titles ("Space film 3")


def test_a_sample_fit_labels_every_user_and_reports_the_sample(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = config_for(files, out, kmeans_sample=30)
    StreamedPipeline(config, vectors=files["vectors"], console=quiet(), chunk_users=20).run()
    labels = pd.read_parquet(out / "users.parquet")["persona"].to_numpy()
    full = KMeansGroups(k=3, seed=0).fit(np.load(files["vectors"])).labels_
    assert adjusted_rand_score(full, labels) > 0.8  # three well separated tastes: the sample finds them
    quality = json.loads((out / "quality.json").read_text())["quality"]
    assert quality["sample"] == {"rows": 30, "of": 90}


def test_a_failed_run_leaves_no_folder_and_no_scratch(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    pipeline = StreamedPipeline(config_for(files, out), vectors=files["vectors"], console=quiet(), chunk_users=10)

    def broken(writer: Any) -> list[Any]:
        raise KeyboardInterrupt

    pipeline._describe = broken  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        pipeline.run()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no run folder, no partial, no chunk files


def test_unknown_ids_are_refused_or_dropped(files: dict[str, Path], tmp_path: Path) -> None:
    inter = pd.read_parquet(files["interactions"])
    inter.loc[3, "user_id"] = "nobody"
    inter.to_parquet(files["interactions"], index=False)
    with pytest.raises(DataError, match="unknown_ids"):
        StreamedPipeline(config_for(files, tmp_path / "a"), vectors=files["vectors"], console=quiet()).run()
    config = config_for(files, tmp_path / "b")
    config = config.model_copy(update={"data": config.data.model_copy(update={"unknown_ids": "drop"})})
    result = StreamedPipeline(config, vectors=files["vectors"], console=quiet()).run()
    assert result.n_interactions == len(inter) - 1


def test_what_streaming_cannot_do_is_refused_before_any_work(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"fits most-popular, group-popular; .* asks for ease"):
        StreamedPipeline(
            config_for(files, tmp_path / "r", recommend={"models": ["most-popular", "ease"]}), vectors=files["vectors"]
        )
    with pytest.raises(ConfigError, match="k = <int>"):
        StreamedPipeline(config_for(files, tmp_path / "r", discover={"k": "auto"}), vectors=files["vectors"])
    with pytest.raises(ConfigError, match="behaviour_weight = 0"):
        StreamedPipeline(config_for(files, tmp_path / "r"))  # no vectors: the default fuses behaviour
    np.save(tmp_path / "short.npy", np.ones((5, 8), dtype=np.float32))
    with pytest.raises(DataError, match=r"expected \(90, dim\)"):
        StreamedPipeline(config_for(files, tmp_path / "r"), vectors=tmp_path / "short.npy", console=quiet()).run()


def test_memory_budget_is_a_size_checked_when_the_config_is_read(files: dict[str, Path], tmp_path: Path) -> None:
    assert parse_size("4GB") == 4 * 2**30 and parse_size("512MB") == 512 * 2**20 and parse_size(10**9) == 10**9
    with pytest.raises(ConfigError, match=r"The 'memory_budget' parameter must be a size .* Got '4 parsecs'"):
        config_for(files, tmp_path, memory_budget="4 parsecs")
    with pytest.raises(ConfigError, match="Got 1000 instead"):
        config_for(files, tmp_path, memory_budget=1000)
    # auto: 540 interactions need far less than the budget; a budget of 256 MB and a big file would stream
    assert not wants_streaming(config_for(files, tmp_path, streaming="auto"))
    assert wants_streaming(config_for(files, tmp_path, streaming="on"))
    assert not wants_streaming(config_for(files, tmp_path, streaming="off"))


def test_chunks_shrink_with_the_budget_and_a_too_small_budget_says_what_it_needs() -> None:
    big, small = plan_chunks(8 * 2**30, 10**7, 2 * 10**8, 32), plan_chunks(2 * 2**30, 10**7, 2 * 10**8, 32)
    assert big.chunk_users > small.chunk_users >= 1_000
    assert plan_chunks(2**30, 100, 2_000, 32).chunk_users == 100  # small data: one chunk
    assert plan_chunks(2**30, 100, 2_000, 32, sample=50).sample == 50
    with pytest.raises(ConfigError, match=r"needs at least .* GB. Got 0.2 GB"):
        plan_chunks(256 * 2**20, 10**8, 2 * 10**9, 384)


@pytest.mark.slow
def test_streamed_agrees_at_ten_thousand_users(tmp_path: Path) -> None:
    """bench/scale.py's synthetic data at 10^4 users in 4 chunks: the same groups, cards and top-n."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("scale", Path(__file__).parents[3] / "bench" / "scale.py")
    assert spec is not None and spec.loader is not None
    scale = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scale)
    paths = scale.make_data(10_000, tmp_path / "data")
    vec = scale.vectors_npy(paths)
    out = tmp_path / "run"
    config = config_for(paths, out, discover={"k": 16, "seed": 0})
    StreamedPipeline(config, vectors=vec, console=quiet(), chunk_users=2_500).run()
    dataset, _ = load_dataset(paths["interactions"], users=paths["users"], items=paths["items"])
    vectors = np.load(vec)
    labels = KMeansGroups(k=16, seed=0).fit(vectors).labels_
    assert (pd.read_parquet(out / "users.parquet")["persona"].to_numpy() == labels).all()
    theirs = describe_groups(labels, texts=build_profiles(dataset), vectors=vectors, dataset=dataset)
    for a, b in zip(personas_from_json(out / "personas.json"), theirs, strict=True):
        assert a.model_dump(exclude={"representatives"}) == b.model_dump(exclude={"representatives"})
        assert [r.user_id for r in a.representatives] == [r.user_id for r in b.representatives]
    ids = [str(u) for u in dataset.user_vocab.ids[::50]]
    reference = GroupPopular().fit(dataset, groups=labels).recommend(ids, 10)
    for got, want in zip(Recommender.load(out / "models" / "group-popular").recommend(ids, 10), reference, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_text_encoder_encodes_chunk_by_chunk_as_in_memory(files: dict[str, Path], tmp_path: Path) -> None:
    """TF-IDF (fitted on a sample of the texts, here all of them) with behaviour_weight = 0: the streamed run's
    vectors and groups are those of the in-memory Pipeline on the same config."""
    from personas.pipeline import Pipeline

    encode = {"kind": "tfidf", "behaviour_weight": 0.0}
    streamed = config_for(files, tmp_path / "s", encode=encode)
    StreamedPipeline(streamed, console=quiet(), chunk_users=20).run()
    memory = config_for(files, tmp_path / "m", encode=encode, streaming="off", discover={"k": 3, "stability_runs": 0})
    result = Pipeline(memory, console=quiet()).run()
    np.testing.assert_allclose(np.load(tmp_path / "s" / "vectors.npy"), result.vectors, atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "s" / "text_vectors.npy"), result.vectors, atol=1e-6)
    labels = pd.read_parquet(tmp_path / "s" / "users.parquet")["persona"].to_numpy()
    assert (labels == result.labels).all()
    assert (tmp_path / "s" / "text_centroids.npy").is_file()


def test_personas_run_streams_when_the_config_says_so(files: dict[str, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from personas.cli import app

    config = tmp_path / "run.toml"
    config.write_text(
        f"""
streaming = "on"
memory_budget = "1GB"
[data]
interactions = "{files["interactions"]}"
users = "{files["users"]}"
items = "{files["items"]}"
[encode]
kind = "tfidf"
behaviour_weight = 0.0
[discover]
k = 3
[recommend]
models = ["most-popular", "group-popular"]
[evaluate]
enabled = false
[output]
dir = "{tmp_path / "out"}"
report = false
"""
    )
    done = CliRunner().invoke(app, ["run", str(config)])
    assert done.exit_code == 0, done.output
    assert "streamed in chunks of 90 users: 3 personas" in " ".join(done.output.split())
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["streamed"]["memory_budget"] == 2**30 and manifest["status"] == "complete"
    done = CliRunner().invoke(app, ["run", str(config), "--resume"])
    assert done.exit_code == 1 and "a streamed run runs every stage" in done.output


def test_without_users_and_items_files_rows_follow_first_appearance(files: dict[str, Path], tmp_path: Path) -> None:
    """No users/items files: users and items are numbered in order of first appearance, as in memory."""
    out = tmp_path / "run"
    config = PipelineConfig.model_validate(
        {
            "streaming": "on",
            "data": {"interactions": files["interactions"]},
            "discover": {"k": 3, "seed": 0},
            "recommend": {"models": ["most-popular"]},
            "evaluate": {"enabled": False},
            "output": {"dir": str(out), "report": False},
        }
    )
    dataset, _ = load_dataset(files["interactions"])
    order = pd.read_parquet(files["users"])["user_id"].tolist()
    vectors = np.load(files["vectors"])[[order.index(u) for u in dataset.user_vocab.ids]]
    np.save(tmp_path / "v.npy", vectors)
    StreamedPipeline(config, vectors=tmp_path / "v.npy", console=quiet(), chunk_users=16).run()
    assert pd.read_parquet(out / "users.parquet")["user_id"].tolist() == list(dataset.user_vocab.ids)
    assert pd.read_parquet(out / "items.parquet")["item_id"].tolist() == list(dataset.item_vocab.ids)
    assert pd.read_parquet(out / "profiles.parquet")["text"].tolist() == build_profiles(dataset)
    ids = [str(u) for u in dataset.user_vocab.ids]
    got = Recommender.load(out / "models" / "most-popular").recommend(ids, 5)
    for a, b in zip(got, MostPopular().fit(dataset).recommend(ids, 5), strict=True):
        np.testing.assert_array_equal(a, b)
