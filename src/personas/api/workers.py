"""``personas serve --workers N``: N uvicorn worker processes on one listening socket, sharing one database.

uvicorn's own supervisor (``uvicorn.supervisors.Multiprocess``) starts the workers (spawned, not forked: no
threads or database connections of the parent are copied), pings them and replaces one that dies. Each worker
builds the app itself from the same settings: ``create_app(settings)`` as an app factory travels to the worker
with uvicorn's config (pickled), so no setting is re-read from the environment there. Each worker holds its own
copy of the run and of the precomputed lists (memory x N), its own verified-key cache and, with the default
``memory://`` rate-limit storage, its own counters (see :func:`shared_limits_warning`).
"""

from __future__ import annotations

import functools
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from personas.api.app import create_app
from personas.api.edge import uvicorn_options
from personas.api.settings import ServeSettings

__all__ = ["WorkerConfig", "run_workers", "shared_limits_warning"]


class WorkerConfig(uvicorn.Config):
    """uvicorn's config for worker processes. The edge's HTTP protocol class is made at run time from the settings
    (``uvicorn_options``), and such a class cannot be pickled: it is left out of the pickled config and made again
    from the settings in the worker."""

    def __init__(self, settings: ServeSettings, **kwargs: Any) -> None:
        self.serve_settings = settings
        super().__init__(functools.partial(create_app, settings), factory=True, **uvicorn_options(settings), **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "http": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.http = uvicorn_options(self.serve_settings)["http"]


def run_workers(settings: ServeSettings, workers: int, **kwargs: Any) -> None:
    """Serve with ``workers`` processes until SIGINT / SIGTERM, then stop them (each finishes its requests).
    ``kwargs``: uvicorn's (host, port, log_level, access_log)."""
    # A worker answers the supervisor's pings only once it has imported the library and unpickled its config,
    # which takes seconds on a busy machine; uvicorn's default (5 s) would kill it as hung, again and again.
    kwargs.setdefault("timeout_worker_healthcheck", 120)
    config = WorkerConfig(settings, workers=workers, **kwargs)
    socket = config.bind_socket()
    try:
        Multiprocess(config, sockets=[socket]).run()
    finally:
        socket.close()


def shared_limits_warning(settings: ServeSettings, workers: int) -> str | None:
    """What to tell the operator when rate limits would be counted per worker (N times the limit in all)."""
    limited = settings.rate_limit_per_key.strip() or settings.rate_limit_per_address.strip()
    if workers < 2 or not limited or settings.rate_limit_storage.rstrip("/") != "memory:":
        return None
    return (
        f"Rate limits are counted in each of the {workers} workers (memory://): a client may get up to {workers} "
        "times each limit. Share the counters with PERSONAS_SERVE_RATE_LIMIT_STORAGE=redis://host:6379."
    )
