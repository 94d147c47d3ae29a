"""The service's settings: which run folder, which database, and the input limits. Injected into the app."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from personas.config import get_settings

__all__ = ["ServeSettings"]


class ServeSettings(BaseSettings):
    """Read from ``PERSONAS_SERVE_*`` environment variables and ``.env``; tests pass an instance."""

    model_config = SettingsConfigDict(env_prefix="PERSONAS_SERVE_", env_file=".env", extra="ignore", frozen=True)

    model_dir: Path = Field(description="A run folder written by `personas run` / `personas demo`.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. Default: SQLite (WAL) in PERSONAS_HOME.",
    )
    model_name: str | None = Field(None, description="Which saved recommender serves; default: router, else hybrid.")
    max_text_chars: int = Field(5_000, ge=1, description="Longest profile text accepted.")
    max_items: int = Field(100, ge=1, description="Most item ids in one request body.")
    max_n: int = Field(100, ge=1, description="Most recommendations in one response.")
    max_page: int = Field(100, ge=1, description="Largest page size of list endpoints.")
    members_sample: int = Field(20, ge=0, description="Members listed with a persona card.")
    map_points: int = Field(5_000, ge=1, description="Most users drawn on the dashboard map.")
    max_body_bytes: int = Field(1_000_000, ge=1_000, description="Larger request bodies are refused (413).")
    # Access (personas.api.auth): API keys with scopes, each new user bound to the key that created it.
    auth: bool = Field(
        True,
        description="False: no keys, every client may do anything (only behind a gateway that authenticates).",
    )
    allow_anonymous_read: bool = Field(
        False, description="Requests without a key may read, run users included (a local demo of your own run)."
    )
    rate_limit_per_key: str = Field(
        "20/second;600/minute", description="Requests per API key (limits notation; '' turns it off)."
    )
    rate_limit_per_address: str = Field(
        "40/second;1200/minute", description="Requests per client address, with or without a key ('' turns it off)."
    )
    rate_limit_storage: str = Field(
        "memory://", description="Where the counters live: memory:// (per process) or e.g. redis://host:6379."
    )
    key_recheck_seconds: float = Field(
        2.0, ge=0, description="A verified key is re-read from the database (revocation) at most this often."
    )

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        folder = get_settings().home / "serve"
        folder.mkdir(parents=True, exist_ok=True)
        # The run folder itself is checksummed, so the database lives outside it, one per run folder name.
        return f"sqlite:///{folder / (self.model_dir.resolve().name + '.db')}"
