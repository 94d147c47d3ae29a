"""The app factory: ``create_app(ServeSettings(model_dir=...))`` -> a FastAPI app serving one run folder."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from threadpoolctl import threadpool_limits

from personas import __version__
from personas.api.auth import Access, RateLimitHeaders
from personas.api.contract import install_contract
from personas.api.edge import install_docs, install_edge
from personas.api.errors import install_error_handlers
from personas.api.routers import health, items, personas, users
from personas.api.service import PersonaService
from personas.api.settings import ServeSettings
from personas.api.storage import Storage
from personas.web import STATIC_DIR, plotly_js, render_index

__all__ = ["create_app"]

DESCRIPTION = """Personas and recommendations from a saved run folder (`personas run` / `personas demo`).

Users of the run get recommendations from the saved recommender; new users (POST /users) are stored, placed
in a persona and served by the cold-start router; events (POST /users/{id}/events) are remembered. Errors
have one JSON shape: an unknown id in the path gives 404 naming the id, invalid input (an unknown item id in a
body included) 422 naming the field, a body over the limit 413, an unavailable database 503 with Retry-After.
have one JSON shape: unknown ids give 404 naming the id, invalid input 422 naming the field.

Access: an API key (`personas keys create`) in `Authorization: Bearer <key>` or `X-API-Key`, with the scope
`read`, `write` or `admin`. A new user belongs to the key that created it; users of the run need an admin key
or one created with `--run-users`. Requests are rate-limited per key and per address (429, `Retry-After`).
"""


def create_app(settings: ServeSettings, *, storage: Storage | None = None) -> FastAPI:
    """Build the app. The run folder is verified and loaded now, so a bad folder fails before serving."""
    service = PersonaService(settings, storage)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Set in each server process as it starts (workers included), not for whoever imports the app.
        limits = threadpool_limits(settings.blas_threads, user_api="blas") if settings.blas_threads else None
        # What was loaded lives as long as the server: moved out of the collector's sight, a full collection
        # scans only what requests create (not the ~200,000 objects of the run and the libraries: ~140 ms).
        gc.freeze()
        if service.top is not None:
            service.top.start()  # run users' lists, in the background: serving starts now
        yield
        gc.unfreeze()
        if service.top is not None:
            service.top.stop()
        service.close()
        if limits is not None:
            limits.restore_original_limits()

    # /docs is served from local files (install_docs); ReDoc would need a CDN.
    app = FastAPI(
        title="personas", version=__version__, description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.service = service
    app.state.access = Access(settings, service.storage)  # checks the rate settings now, before serving
    install_error_handlers(app)
    app.add_middleware(RateLimitHeaders)  # inside the edge: refused requests never reach a counter
    install_edge(app, settings, longest_item_id=max(map(len, service.item_ids), default=1))
    install_contract(app, settings, service.item_ids)
    install_docs(app)  # before the /static mount, which would otherwise take /static/docs

    for router in (health.router, personas.router, users.router, items.router):
        app.include_router(router)

    index = render_index(service.examples())  # the fields' examples come from the loaded run

    @app.get("/", include_in_schema=False)
    def dashboard() -> HTMLResponse:
        return HTMLResponse(index)

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly() -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
