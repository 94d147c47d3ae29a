"""PipelineConfig is composed of the component configs: every parameter can be set from TOML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from personas.discover import AgglomerativeConfig, HDBSCANConfig, KMeansConfig
from personas.encode import CachedConfig, FusionConfig, OnnxConfig, TfidfConfig
from personas.errors import ConfigError
from personas.pipeline import load_config
from personas.recommend import EASE, EASEConfig, MostPopular

ML = '[data]\ndataset = "ml-100k"\n'


def _load(tmp_path: Path, toml: str) -> Any:
    path = tmp_path / "run.toml"
    path.write_text(ML + toml)
    return load_config(path)


def test_model_tables_reach_the_fitted_models(shop: Path, tmp_path: Path, make_config: Any, run_pipeline: Any) -> None:
    extra = "[evaluate]\nenabled = false\n[recommend.models.most-popular]\n[recommend.models.ease]\nl2 = 123\n"
    pipeline = run_pipeline(make_config(shop, extra=extra), tmp_path)
    models = pipeline.result.models  # type: ignore[attr-defined]
    assert list(models) == ["most-popular", "ease"]
    assert isinstance(models["most-popular"], MostPopular)
    assert isinstance(models["ease"], EASE) and models["ease"].config == EASEConfig(l2=123.0)


def test_the_list_form_still_means_defaults(tmp_path: Path) -> None:
    config = _load(tmp_path, '[recommend]\nmodels = ["most-popular", "item-knn", "ease"]\n')
    assert config.recommend.models == ["most-popular", "item-knn", "ease"]  # saved as written
    configs = config.recommend.model_configs()
    assert list(configs) == ["most-popular", "item-knn", "ease"]
    assert configs["ease"] == EASEConfig()
    assert _load(tmp_path, "").recommend.model_configs().keys() == {"most-popular", "group-popular", "ease"}


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[recommend.models.ease]\nl2 = -1\n",
            r"\[recommend\.models\.ease\] The 'l2' parameter of EASE must be a float > 0",
        ),
        ("[recommend.models.ease]\nl3 = 1\n", r"\[recommend\.models\.ease\] the ease model has no parameter 'l3'"),
        (
            '[recommend.models.ease]\nl2 = "big"\n',
            r"\[recommend\.models\.ease\] The 'l2' parameter of the ease model is invalid: .*Got 'big' instead",
        ),
        ("[recommend.models.bert4rec]\n", r"The 'models.0' parameter of \[recommend\] is invalid"),
        (
            '[discover]\nmethod = "agglomerative"\nlinkage = "median"\n',
            r"\[discover\] The 'linkage' parameter of the agglomerative method",
        ),
        ("[discover]\nmin_group_size = 5\n", r"\[discover\] has no parameter 'min_group_size'"),
        (
            '[encode]\nkind = "tfidf"\nn_components = 0\n',
            r"\[encode\] The 'n_components' parameter of the tfidf encoder",
        ),
        ('[encode]\nkind = "tfidf"\nthreads = 2\n', r"\[encode\] has no parameter 'threads'"),
    ],
)
def test_errors_name_the_toml_section_and_key(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        _load(tmp_path, toml)
    assert "EASEConfig" not in str(info.value) and "AgglomerativeConfig" not in str(info.value)
    assert "Section" not in str(info.value)  # the TOML's [discover], never the class DiscoverSection


def test_discover_keys_reach_the_finder(tmp_path: Path) -> None:
    config = _load(tmp_path, '[discover]\nmethod = "agglomerative"\nlinkage = "complete"\nk = 4\n')
    assert config.discover.finder_config(4) == AgglomerativeConfig(k=4, linkage="complete")
    assert _load(tmp_path, "[discover]\nseed = 3\n").discover.finder_config(5) == KMeansConfig(k=5, seed=3)
    hdbscan = _load(tmp_path, '[discover]\nmethod = "hdbscan"\nmin_group_size = 5\n').discover.finder_config(8)
    assert hdbscan == HDBSCANConfig(min_group_size=5)


def test_encode_keys_compose_the_encoder_config(tmp_path: Path) -> None:
    config = _load(tmp_path, '[encode]\nkind = "tfidf"\nn_components = 32\nbehaviour_weight = 0.25\n')
    composed = config.encoder_config(cache_dir=tmp_path)
    assert isinstance(composed, FusionConfig) and composed.text_weight == 0.75
    assert composed.text_encoder == CachedConfig(encoder=TfidfConfig(n_components=32), directory=str(tmp_path))
    assert composed.behaviour.n_components == 64 and composed.behaviour.seed == 0
    assert _load(tmp_path, "[encode]\nbehaviour_weight = 0\ncache = false\n").encoder_config() == OnnxConfig()
    # Old files keep their saved form: no key appears that the file did not have.
    assert "n_components" not in _load(tmp_path, "").model_dump()["encode"]


def test_linkage_from_toml_reaches_the_fitted_groups(
    shop: Path, tmp_path: Path, make_config: Any, run_pipeline: Any
) -> None:
    extra = '[evaluate]\nenabled = false\n[recommend]\nmodels = ["most-popular"]\n'
    path = make_config(shop, extra=extra)
    path.write_text(
        path.read_text().replace("[discover]\nk = 3", '[discover]\nk = 3\nmethod = "agglomerative"\nlinkage = "single"')
    )
    pipeline = run_pipeline(path, tmp_path)
    assert pipeline.config.discover.finder_config(3).linkage == "single"
    assert len(np.unique(pipeline.result.labels)) == 3  # type: ignore[attr-defined]
