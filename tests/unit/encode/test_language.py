"""Languages: TF-IDF reads Chinese words, an English-only model warns on Chinese, kind = "auto" picks the
multilingual encoder for it (issue 16, problem 7)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from personas.config import Settings
from personas.data import Dataset, build_profiles, detect_language, segment
from personas.encode import (
    CachedConfig,
    MultilingualConfig,
    OnnxConfig,
    SentenceTransformerConfig,
    TfidfEncoder,
    check_language,
    is_english_only,
)
from personas.pipeline import Pipeline, PipelineConfig

pytest.importorskip("jieba")
BAKING = ["我周末在家用烤箱烤面包。", "最近在学做蛋糕，烤箱每天都开着。", "烤面包和蛋糕是我的爱好。"]
RUNNING = ["我每天早上去公园跑步。", "为了跑马拉松我每天跑步。", "新买的跑鞋很适合跑步和马拉松。"]
ENGLISH = ["I bake bread and cakes every weekend.", "Running a marathon is my goal this year."]


def test_segment_splits_chinese_into_words_and_leaves_other_text():
    assert segment("我喜欢烤面包").split() == ["我", "喜欢", "烤面包"]
    assert segment("我喜欢烤面包", content_words=True).split() == ["喜欢", "烤面包"]  # the pronoun goes
    assert segment("I like bread") == "I like bread"


def test_tfidf_accepts_chinese_and_groups_by_words():
    encoder = TfidfEncoder(n_components=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fewer dimensions than asked: a tiny corpus
        vectors = encoder.fit(BAKING + RUNNING).encode(BAKING + RUNNING)
    assert "jieba" in encoder.name
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1.0)
    assert (sims.argmax(axis=1) // 3).tolist() == [0, 0, 0, 1, 1, 1]  # each text's nearest is on its theme
    assert {"烤箱", "跑步", "马拉松"} <= set(encoder.vectorizer_.vocabulary_)


def test_tfidf_error_on_no_shared_word_names_min_df():
    with pytest.raises(ValueError, match=r"no word shared by at least 2 of them in 8 texts \(min_df=2\); lower min_df"):
        TfidfEncoder(min_df=2).fit([f"zz{i}" for i in range(8)])


pytest.importorskip("lingua")


def test_detect_language_votes_over_the_corpus():
    zh = detect_language(BAKING + RUNNING + ["ok"])
    assert (zh.code, zh.name, zh.checked) == ("zh", "Chinese", 7)
    assert zh.share == pytest.approx(6 / 7)
    assert detect_language(ENGLISH).code == "en"
    assert detect_language(["", None]).code is None


def test_english_only_model_warns_on_chinese_and_only_then():
    zh, en = detect_language(BAKING + RUNNING), detect_language(ENGLISH)
    assert is_english_only(OnnxConfig()) and is_english_only(CachedConfig(encoder=SentenceTransformerConfig()))
    assert not is_english_only(MultilingualConfig()) and not is_english_only(OnnxConfig(model="my-model.onnx"))
    with pytest.warns(UserWarning, match=r"English-only model, but 100% of 6 texts checked are Chinese.*multilingual"):
        message = check_language(OnnxConfig(), zh)
    assert message and "Chinese" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_language(MultilingualConfig(), zh) is None
        assert check_language(OnnxConfig(), en) is None


def _pipeline(tmp_path, texts: list[str], kind: str) -> tuple[Pipeline, Dataset]:
    users = [f"u{i}" for i in range(len(texts))]
    dataset = Dataset.from_frames(
        pd.DataFrame({"user_id": users, "item_id": "i"}), users=pd.DataFrame({"user_id": users, "text": texts})
    )
    config = PipelineConfig.model_validate({"data": {"dataset": "ml-100k"}, "encode": {"kind": kind}})
    return Pipeline(config, settings=Settings(home=tmp_path), console=Console(quiet=True)), dataset


def test_auto_picks_the_multilingual_encoder_for_chinese_and_minilm_for_english(tmp_path):
    assert PipelineConfig.model_validate({"data": {"dataset": "ml-100k"}}).encode.kind == "auto"
    pipeline, dataset = _pipeline(tmp_path, BAKING + RUNNING, "auto")
    assert pipeline.encode_section(dataset, build_profiles(dataset)).kind == "multilingual"
    assert pipeline.notes_["language"]["code"] == "zh" and "language_warning" not in pipeline.notes_
    pipeline, dataset = _pipeline(tmp_path, ENGLISH * 3, "auto")
    assert pipeline.encode_section(dataset, build_profiles(dataset)).kind == "minilm"


def test_a_run_with_minilm_on_chinese_warns_and_says_so_in_its_notes(tmp_path):
    pipeline, dataset = _pipeline(tmp_path, BAKING + RUNNING, "minilm")
    with pytest.warns(UserWarning, match="English-only"):
        section = pipeline.encode_section(dataset, build_profiles(dataset))
    assert section.kind == "minilm"
    assert "Chinese" in pipeline.notes_["language_warning"]


def test_auto_takes_no_encoder_parameters():
    with pytest.raises(ValueError, match=r'kind = "auto" takes no encoder parameters \(got threads\)'):
        PipelineConfig.model_validate({"data": {"dataset": "ml-100k"}, "encode": {"threads": 2}})


def test_vectors_for_a_chinese_corpus_are_finite():
    vectors = TfidfEncoder(n_components=2).fit(BAKING + RUNNING).encode(["", "跑步"])
    assert np.isfinite(vectors).all()
