"""The rule that decides whether the Spark engine may fit a model on its driver (no Spark needed)."""

from __future__ import annotations

import pytest

from personas.errors import ConfigError
from personas.pipeline import PipelineConfig
from personas.spark._driver import (
    BYTES_PER_INTERACTION,
    TEXT_DIM,
    check_driver_fit,
    driver_bytes,
    driver_models,
)


def _configs(*models: str) -> dict:
    config = PipelineConfig.model_validate(
        {"engine": "spark", "data": {"dataset": "ml-100k"}, "recommend": {"models": list(models)}}
    )
    return dict(config.recommend.model_configs())


def test_models_spark_fits_need_nothing_on_the_driver() -> None:
    configs = _configs("most-popular", "group-popular", "als")
    assert driver_models(configs) == {}
    assert driver_bytes(configs, 10**9, 10**7, 10**11, 64) == 0
    check_driver_fit(configs, 0.001, 10**9, 10**7, 10**11, 64)  # no driver-side model: nothing to refuse


def test_the_estimate_counts_interactions_vectors_and_the_largest_item_item_matrix() -> None:
    configs = _configs("most-popular", "ease", "hybrid")
    assert list(driver_models(configs)) == ["ease", "hybrid"]
    users, items, interactions, dim = 1000, 100, 20_000, 64
    expected = (
        BYTES_PER_INTERACTION * interactions
        + 4 * users * (dim + 2 * TEXT_DIM)
        + 4 * items * TEXT_DIM
        + 3 * 8 * items**2  # EASE and hybrid are fitted one after the other: the largest, once
    )
    assert driver_bytes(configs, users, items, interactions, dim) == expected


def test_over_the_limit_the_run_is_refused_in_one_line_naming_the_models_and_the_fixes() -> None:
    configs = _configs("most-popular", "ease", "router")
    # ml-100k's size fits the default 4 GB
    check_driver_fit(configs, 4.0, 943, 1682, 100_000, 416)
    with pytest.raises(ConfigError) as info:
        check_driver_fit(configs, 4.0, 10_000_000, 50_000, 200_000_000, 416)
    message = str(info.value)
    assert "\n" not in message
    assert "fits ease, router on the driver" in message
    assert "raise driver_memory_gb" in message and "most-popular, group-popular, als" in message


def test_the_spark_config_accepts_every_model_and_a_positive_driver_memory() -> None:
    config = PipelineConfig.model_validate(
        {
            "engine": "spark",
            "data": {"dataset": "ml-100k"},
            "recommend": {"models": ["most-popular", "ease", "hybrid", "router"]},
            "driver_memory_gb": 2.5,
        }
    )
    assert config.driver_memory_gb == 2.5
    with pytest.raises(ConfigError, match="driver_memory_gb"):
        PipelineConfig.validate_as({"data": {"dataset": "ml-100k"}, "driver_memory_gb": 0}, "the config file")
