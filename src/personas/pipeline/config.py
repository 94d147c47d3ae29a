"""The pipeline's TOML configuration, validated by pydantic; errors name the key and the allowed values."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from personas.config import ComponentConfig
from personas.data import ProfileConfig
from personas.errors import ConfigError

__all__ = [
    "DataSection",
    "DiscoverSection",
    "EncodeSection",
    "EvaluateSection",
    "OutputSection",
    "PipelineConfig",
    "RecommendSection",
    "load_config",
]

ModelName = Literal["most-popular", "group-popular", "item-knn", "ease", "als", "content", "hybrid", "router"]


class DataSection(ComponentConfig):
    """Either a built-in ``dataset`` or files (``interactions`` + optional ``users``/``items``/``tags``)."""

    dataset: str | None = None
    interactions: Path | None = None
    users: Path | None = None
    items: Path | None = None
    tags: Path | None = None
    columns: dict[Literal["users", "items", "interactions", "tags"], dict[str, str]] = Field(default_factory=dict)
    unknown_ids: Literal["error", "drop"] = "error"
    delimiter: str | None = None
    encoding: str = "utf-8"

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.dataset is None) == (self.interactions is None):
            raise ValueError(
                "The 'data' section needs exactly one of 'dataset' (a built-in name such as \"ml-100k\") or "
                "'interactions' (a file path)."
            )
        return self


class EncodeSection(ComponentConfig):
    kind: Literal["minilm", "sentence-transformers", "tfidf", "multilingual"] = "minilm"
    behaviour_weight: float = Field(0.5, ge=0.0, le=1.0, description="0: text only; 1: behaviour only.")
    behaviour_dim: int = Field(64, ge=2)
    batch_size: int = Field(64, ge=1)
    cache: bool = True


class DiscoverSection(ComponentConfig):
    method: Literal["kmeans", "agglomerative", "hdbscan", "leiden"] = "kmeans"
    k: int | Literal["auto"] = "auto"
    candidates: list[int] = Field(default_factory=lambda: [4, 6, 8, 10, 12])
    seed: int = 0

    @model_validator(mode="after")
    def _check_k(self) -> Self:
        if isinstance(self.k, int) and self.k < 2:
            raise ValueError(f"The 'discover.k' parameter must be an int >= 2 or \"auto\". Got {self.k} instead.")
        if any(c < 2 for c in self.candidates) or not self.candidates:
            raise ValueError(
                f"The 'discover.candidates' parameter must be a non-empty list of ints >= 2. Got {self.candidates}."
            )
        return self


_DEFAULT_MODELS: list[ModelName] = ["most-popular", "group-popular", "ease"]


class RecommendSection(ComponentConfig):
    models: list[ModelName] = Field(default_factory=lambda: list(_DEFAULT_MODELS))
    n: int = Field(10, ge=1, le=1000)


class EvaluateSection(ComponentConfig):
    enabled: bool = True
    protocol: Literal["warm"] = "warm"
    k: list[int] = Field(default_factory=lambda: [10, 20])


class OutputSection(ComponentConfig):
    dir: Path = Path("runs/demo")
    report: bool = True


class PipelineConfig(ComponentConfig):
    #: BLAS/OpenMP threads for the numeric stages. 1 is the default because, on a small shared machine, 2-thread
    #: BLAS on ml-100k-sized matrices measured up to 30x slower than 1 thread when another process was busy.
    #: None leaves the libraries' defaults (all cores); raise it for large data on a quiet machine.
    threads: int | None = Field(1, ge=1)
    #: "local" runs in this process (numpy/faiss); "spark" runs on Apache Spark through personas.spark
    #: (``personas run --engine spark``) and writes the same run folder.
    engine: Literal["local", "spark"] = "local"
    #: Spark master URL for engine = "spark": local[N], spark://host:7077, yarn, k8s://...
    master: str = "local[2]"
    data: DataSection
    profiles: ProfileConfig = Field(default_factory=ProfileConfig)
    encode: EncodeSection = Field(default_factory=EncodeSection)
    discover: DiscoverSection = Field(default_factory=DiscoverSection)
    recommend: RecommendSection = Field(default_factory=RecommendSection)
    evaluate: EvaluateSection = Field(default_factory=EvaluateSection)
    output: OutputSection = Field(default_factory=OutputSection)


def load_config(path: str | Path) -> PipelineConfig:
    """Read and validate a pipeline TOML file. Data paths are relative to the file; the output folder to the
    working directory."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found.")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}).") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc}).") from None
    base = path.parent
    data = raw.get("data")
    if isinstance(data, dict):
        for key in ("interactions", "users", "items", "tags"):
            if isinstance(data.get(key), str) and not Path(data[key]).is_absolute():
                data[key] = str(base / data[key])
    try:
        return PipelineConfig.model_validate(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
