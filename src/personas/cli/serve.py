"""``personas serve --model DIR [--db URL]``: the HTTP API and dashboard over a run folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from personas.cli._common import err_console, user_errors
from personas.errors import ConfigError


@user_errors
def serve(
    model: Annotated[Path, typer.Option(help="Run folder written by `personas run` or `personas demo`.")],
    db: Annotated[
        str | None,
        typer.Option(help="Database URL (e.g. postgresql+psycopg://user@host/db). Default: SQLite in PERSONAS_HOME."),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8000,
    recommender: Annotated[
        str | None, typer.Option("--recommender", help="Saved recommender to serve (default: router).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes, sharing the port and the database (SQLite in WAL mode, or PostgreSQL); each "
            "loads the run folder.",
        ),
    ] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
    allow_anonymous_read: Annotated[
        bool | None,
        typer.Option(
            "--allow-anonymous-read/--no-anonymous-read",
            help="Requests without a key may read, users of the run included: a local demo of your own run.",
        ),
    ] = None,
) -> None:
    """Serve personas, recommendations, new users and events over HTTP, with a dashboard at /."""
    import uvicorn

    from personas.api import ServeSettings, create_app
    from personas.api.edge import uvicorn_options

    given: dict[str, Any] = {
        "database_url": db,
        "model_name": recommender,
        "host": host,
        "allow_anonymous_read": allow_anonymous_read,
    }
    # Options left out fall back to PERSONAS_SERVE_* variables and .env.
    with _one_line_start_errors(db):
        settings = ServeSettings(model_dir=model, **{k: v for k, v in given.items() if v is not None})
        app = create_app(settings)
    service = app.state.service
    processes = f" in {workers} worker processes" if workers > 1 else ""
    err_console.print(
        f"Serving {model} ({len(service.personas)} personas, model {service.model_name}) with "
        f"{service.storage.dialect} storage on http://{host}:{port}/{processes} (API docs at /docs)",
        highlight=False,
    )
    _say_how_to_get_in(settings, service.storage, model, db, host)
    if workers > 1:
        from personas.api.workers import run_workers, shared_limits_warning

        warning = shared_limits_warning(settings, workers)
        if warning:
            err_console.print(f"[bold yellow]Note:[/] {warning}", highlight=False)
        # The run was loaded here to check it (one-line errors above); each worker loads its own.
        service.storage.close()
        del app, service
        run_workers(settings, workers, host=host, port=port, log_level=log_level, access_log=access_log)
        return
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log, **uvicorn_options(settings))


@contextmanager
def _one_line_start_errors(db: str | None) -> Iterator[None]:
    """A bad setting or database at start ends with one line that says which and how to fix it (user_errors)."""
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"])
            problems.append(
                f"The setting {name} (PERSONAS_SERVE_{name.upper()}) is invalid: {error['msg']}. "
                f"Got {error.get('input')!r} instead."
            )
        raise ConfigError(" ".join(problems)) from None
    except SQLAlchemyError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = "--db" if db else "PERSONAS_SERVE_DATABASE_URL"
        raise ConfigError(f"The database cannot be used ({first}). Check {where}.") from None


def _say_how_to_get_in(settings: Any, storage: Any, model: Path, db: str | None, host: str) -> None:
    """One line on access: open reads (and to whom), or how to make the first key."""
    if not settings.auth:
        err_console.print("[bold red]Auth is off[/]: every client may read and write every user.", highlight=False)
        return
    where = f"--db {db}" if db else f"--model {model}"
    if settings.allow_anonymous_read:
        exposed = host not in ("127.0.0.1", "localhost", "::1")
        err_console.print(
            ("[bold red]Warning:[/] " if exposed else "")
            + f"Anyone who reaches {host} may read, run users' histories included (--allow-anonymous-read). "
            f"Writes need a key: `personas keys create --scope read,write {where}`.",
            highlight=False,
        )
    elif not any(key.revoked_at is None for key in storage.api_keys()):
        err_console.print(
            f"No API keys yet: every request but /health gets 401. Create one with "
            f"`personas keys create --scope read,write {where}` (or serve with --allow-anonymous-read).",
            highlight=False,
        )
