"""The service's settings: which run folder, which database, and the input limits. Injected into the app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    precomputed_n: int = Field(
        20,
        ge=0,
        le=255,
        description="Run users' top-n kept ready with reasons (from the start, in the background; ~21 bytes per "
        "user and n, per worker); a larger n is computed per request. 0: none.",
    )
    body_cache_bytes: int = Field(
        32 * 2**20,
        ge=0,
        description="Bytes of run users' recommendation answers (JSON, from the precomputed lists) kept per worker "
        "once asked for, so that asking again is a lookup; once full, answers are built per request. 0: none.",
    )
    max_page: int = Field(100, ge=1, description="Largest page size of list endpoints.")
    members_sample: int = Field(20, ge=0, description="Members listed with a persona card.")
    map_points: int = Field(5_000, ge=1, description="Most users drawn on the dashboard map.")
    max_body_bytes: int = Field(1_000_000, ge=1_000, description="Larger request bodies are refused (413).")
    # The server edge (personas.api.edge): what an untrusted client can hold open or send before the app runs.
    host: str = Field("127.0.0.1", description="Interface `personas serve` listens on; allowed as a Host header too.")
    allowed_hosts: Annotated[list[str] | None, NoDecode] = Field(
        None,
        description="Host header values accepted, comma-separated (400 otherwise; '*.example.com' matches "
        "subdomains). Default: localhost, 127.0.0.1, [::1] and the listening host. Stops DNS rebinding.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (CORS), comma-separated. Default: none.",
    )
    max_header_bytes: int = Field(16_384, ge=1_024, description="Request line plus headers larger than this: 400.")
    request_timeout: float = Field(
        10.0, gt=0, description="Seconds a client has to send a whole request (headers and body); then closed."
    )
    keep_alive_timeout: int = Field(5, ge=1, description="Seconds an idle keep-alive connection stays open.")
    max_connections: int = Field(1_000, ge=1, description="Open connections or requests at once; more get a 503.")
    backlog: int = Field(2_048, ge=1, description="Connections queued by the OS before they are accepted.")

    @field_validator("allowed_hosts", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        # From the environment: "a.example.com,b.example.com" (a JSON list is accepted too).
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    def resolved_allowed_hosts(self) -> list[str]:
        if self.allowed_hosts is not None:
            return self.allowed_hosts
        hosts = ["localhost", "127.0.0.1", "[::1]"]
        # 0.0.0.0 and :: are not names a client sends: list the public names in PERSONAS_SERVE_ALLOWED_HOSTS.
        bound = f"[{self.host}]" if ":" in self.host else self.host
        return hosts + ([bound] if bound not in {*hosts, "0.0.0.0", "[::]"} else [])

    # New users' texts from concurrent requests are encoded together (personas.api.batching).
    encode_batch_max: int = Field(
        32, ge=1, description="Most new-user texts encoded in one batch call (1: each request encodes its own)."
    )
    encode_batch_wait_ms: float = Field(
        0.0,
        ge=0,
        le=1_000,
        description="How long a text may wait for others to join its batch (0: only those already queued join).",
    )
    blas_threads: int | None = Field(
        1,
        ge=1,
        description="Threads of each BLAS call (numpy/scipy) while serving; None: the library's default (every "
        "core). Requests already run side by side, and a per-request matrix product split over cores spins and waits.",
    )
    keep_text: bool = Field(
        False,
        description="Store new users' profile text. Off: only its vector and a salted hash are stored.",
    )
    idempotency_ttl_s: float = Field(
        86_400.0, gt=0, description="How long a POST's response is kept for replays of its Idempotency-Key."
    )
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
    rate_limit_failed_keys: str = Field(
        "10/minute",
        description="Wrong API keys per client address before its unknown keys get 429 unhashed ('' turns it off).",
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
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # the database holds personal data
        # The run folder itself is checksummed, so the database lives outside it, one per run folder name.
        return f"sqlite:///{folder / (self.model_dir.resolve().name + '.db')}"
