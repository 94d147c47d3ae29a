"""``GET /health``: each dependency (run folder, text encoder, database) with its status."""

from __future__ import annotations

from fastapi import APIRouter, Response

from personas.api.deps import Service
from personas.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "A dependency is down (named in checks)."}},
)
def health(service: Service, response: Response) -> Health:
    """Liveness and readiness: 200 when the run folder, the encoder and the database are all up, else 503 with
    the same body (status "degraded"). Sync: a database that does not answer must not hold the event loop."""
    report = service.health()
    if report.status != "ok":
        response.status_code = 503
    return report
