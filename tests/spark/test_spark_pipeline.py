"""The Spark engine against the single-machine one on ml-100k (Spark local mode, 2 cores)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

from personas.api import ServeSettings, create_app
from personas.api.testing import key_headers
from personas.cli.main import app
from personas.data import Dataset, build_profiles
from personas.discover import KMeansGroups
from personas.errors import ConfigError
from personas.pipeline import Pipeline, PipelineConfig, load_run
from personas.recommend.base import MostPopular
from personas.recommend.popular import GroupPopular

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def test_spark_kmeans_agrees_with_single_machine_kmeans(spark_run: Any, ml100k_vectors: np.ndarray) -> None:
    # Same vectors, k and seed. Both engines seed with greedy k-means++ from the same seed (on ml-100k the
    # Spark engine's seeding sample is every user); after that, Spark's cosine k-means and the numpy Lloyd
    # loop iterate independently.
    k, seed = spark_run.config.discover.k, spark_run.config.discover.seed
    local = KMeansGroups(k=k, seed=seed, n_init=1, engine="numpy").fit(ml100k_vectors)
    assert spark_run.labels.shape == local.labels_.shape
    assert spark_run.labels.min() == 0 and len(np.unique(spark_run.labels)) == k
    assert adjusted_rand_score(local.labels_, spark_run.labels) >= 0.9


def test_group_popular_is_identical_for_identical_groups(spark_run: Any, ml100k: Dataset) -> None:
    run = load_run(spark_run.folder)
    users = list(ml100k.user_vocab.ids)
    for name, local_model in (
        ("group-popular", GroupPopular().fit(ml100k, groups=spark_run.labels)),
        ("most-popular", MostPopular().fit(ml100k)),
    ):
        spark_ids, spark_scores = run.model(name).recommend(users, n=10)
        local_ids, local_scores = local_model.recommend(users, n=10)
        np.testing.assert_array_equal(spark_ids, local_ids, err_msg=name)
        np.testing.assert_allclose(spark_scores, local_scores, rtol=1e-9, atol=1e-12, err_msg=name)


def test_spark_als_recommends_unseen_items_for_every_user(spark_run: Any, ml100k: Dataset) -> None:
    model = load_run(spark_run.folder).model("als")
    ids, scores = model.recommend(list(ml100k.user_vocab.ids[:50]), n=10)
    assert (ids >= 0).all() and np.isfinite(scores).all()
    seen = ml100k.matrix("binary")
    assert all(seen[row, ids[row]].nnz == 0 for row in range(50))


def test_run_folder_has_the_pipeline_format(spark_run: Any, ml100k: Dataset) -> None:
    run = load_run(spark_run.folder)
    assert run.manifest["engine"]["name"] == "spark"
    assert list(run.users["user_id"]) == list(ml100k.user_vocab.ids)
    np.testing.assert_array_equal(run.users["persona"].to_numpy(), spark_run.labels)
    assert run.vectors().shape == (ml100k.n_users, 96)
    assert len(run.personas) == spark_run.config.discover.k and sum(p.size for p in run.personas) == ml100k.n_users
    sizes = [p.size for p in run.personas]
    assert sizes == sorted(sizes, reverse=True)
    for persona in run.personas:
        assert persona.keywords and persona.distinctive_items and persona.representatives
        assert all(i.lift > 1.0 and i.users >= 5 for i in persona.distinctive_items)


def test_spark_profile_texts_match_the_single_machine_builder(spark: Any, ml100k: Dataset) -> None:
    from personas.config import get_settings
    from personas.spark import load_frames, read_table
    from personas.spark._data import stage_builtin, to_pandas
    from personas.spark._profiles import build_profiles_sql

    paths = stage_builtin("ml-100k", get_settings())
    data = load_frames(
        spark,
        read_table(spark, paths["interactions"], kind="interactions"),
        users=read_table(spark, paths["users"], kind="users"),
        items=read_table(spark, paths["items"], kind="items"),
        name="ml-100k",
    )
    texts = to_pandas(build_profiles_sql(data).orderBy("user_row"))["text"].tolist()
    local = build_profiles(ml100k)
    same = np.mean([a == b for a, b in zip(texts, local, strict=True)])
    assert same >= 0.9, f"only {same:.0%} of the profile texts are identical"


def test_spark_run_folder_serves_over_http(spark_run: Any, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'serve.sqlite'}"
    settings = ServeSettings(model_dir=spark_run.folder, database_url=db)
    with TestClient(create_app(settings), base_url="http://localhost", headers=key_headers(db)) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["personas"] == len(spark_run.personas)
        first = client.get("/personas/0").json()["card"]
        assert first["group"] == 0 and first["size"] == spark_run.personas[0].size
        body = client.get("/users/1/recommendations", params={"n": 5}).json()
        assert body["persona"] == int(spark_run.labels[0]) and len(body["items"]) == 5


def test_personas_recommend_reads_the_spark_run_folder(spark_run: Any) -> None:
    result = CliRunner().invoke(
        app, ["recommend", "--model", str(spark_run.folder), "--use", "group-popular", "--user", "1", "--n", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "User 1" in result.output and "persona" in result.output


def test_the_local_pipeline_refuses_a_spark_config() -> None:
    config = PipelineConfig.model_validate(
        {"engine": "spark", "data": {"dataset": "ml-100k"}, "recommend": {"models": ["most-popular", "als"]}}
    )
    with pytest.raises(ConfigError, match="engine = 'spark'"):
        Pipeline(config).run()
    assert json.loads(config.model_dump_json())["master"] == "local[2]"


def test_personas_run_rejects_an_unknown_engine(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text('[data]\ndataset = "ml-100k"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(config), "--engine", "dask"])
    assert result.exit_code == 1
    assert "'--engine' option must be 'local' or 'spark'" in result.output


def test_spark_keywords_match_the_single_machine_keywords(spark: Any, ml100k: Dataset, spark_run: Any) -> None:
    # Same texts and groups in: the same terms in the same order, the same scores and contrasts, the same names.
    from personas.describe import DescribeConfig, class_keywords, distinct_names
    from personas.spark._describe import keywords_spark

    texts = build_profiles(ml100k)
    # punctuation and stop words at phrase edges, which the analyser must treat as the single machine does
    texts[0] = "Raiders of the Lost Ark; good will hunting. The Wizard of Oz, (musical) sci-fi: star wars"
    texts[1] = "   "
    labels = spark_run.labels
    frame = spark.createDataFrame(list(enumerate(texts)), "user_row long, text string")
    groups = spark.createDataFrame([(i, int(g)) for i, g in enumerate(labels)], "user_row long, group int")
    n_groups = int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=n_groups).tolist()
    # The Spark engine has the c-TF-IDF, lift and contrast steps, not the later ones (support, plurals, words
    # with digits, n-gram merging): compared with those off.
    classic = {"min_support": 0.0, "fold_plurals": False, "digit_words": True, "merge_ngrams": False}
    trigrams = {"keywords": {**classic, "ngram_max": 3, "extra_stop_words": ["Drama"], "n_keywords": 6}}
    for config in (DescribeConfig.model_validate({"keywords": classic}), DescribeConfig.model_validate(trigrams)):
        ours = keywords_spark(frame, groups, n_groups, config)
        local = class_keywords(texts, labels, n_groups, config.keywords)
        assert any(k.term.count(" ") == config.keywords.ngram_max - 1 for kws in local for k in kws)
        for g in range(n_groups):
            assert [k.term for k in ours[g]] == [k.term for k in local[g]], f"group {g}"
            np.testing.assert_allclose([k.score for k in ours[g]], [k.score for k in local[g]], rtol=1e-9)
            np.testing.assert_allclose(
                [k.contrast if k.contrast is not None else np.nan for k in ours[g]],
                [k.contrast if k.contrast is not None else np.nan for k in local[g]],
                rtol=1e-9,
            )
        assert distinct_names(ours, sizes) == distinct_names(local, sizes)


def test_spark_persona_names_share_no_term(spark_run: Any) -> None:
    terms = [term for p in spark_run.personas for term in p.name.split(" · ")]
    assert len(terms) == len(set(terms)) and len(spark_run.personas) == spark_run.config.discover.k


def test_minilm_in_predict_batch_udf_gives_the_single_machine_vectors(spark: Any, ml100k: Dataset) -> None:
    # The fused int8 MiniLM, built on the driver and loaded once per Python worker, encodes in Spark batches.
    from personas.encode import make_encoder
    from personas.spark._encode import encode_texts

    texts = [*build_profiles(ml100k)[:120], "", "A short review: great battery, awful screen."]
    frame = spark.createDataFrame(list(enumerate(texts)), "user_row long, text string").repartition(2)
    rows = encode_texts(frame, "minilm", rows_per_batch=32).collect()
    ours = np.zeros((len(texts), 384), dtype=np.float32)
    for row in rows:
        ours[row["user_row"]] = row["vector"]
    local = make_encoder("minilm").encode(texts, show_progress=False)
    assert len(rows) == len(texts)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(ours * local, axis=1))) >= 0.9999
