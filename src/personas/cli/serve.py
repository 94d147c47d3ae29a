"""``personas serve --model DIR [--db URL]``: the HTTP API and dashboard over a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from personas.cli._common import err_console, user_errors


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
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
) -> None:
    """Serve personas, recommendations, new users and events over HTTP, with a dashboard at /."""
    import uvicorn

    from personas.api import ServeSettings, create_app

    given: dict[str, Any] = {"database_url": db, "model_name": recommender}
    # Options left out fall back to PERSONAS_SERVE_* variables and .env.
    settings = ServeSettings(model_dir=model, **{k: v for k, v in given.items() if v is not None})
    app = create_app(settings)
    service = app.state.service
    err_console.print(
        f"Serving {model} ({len(service.personas)} personas, model {service.model_name}) with "
        f"{service.storage.dialect} storage on http://{host}:{port}/ (API docs at /docs)",
        highlight=False,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log)
