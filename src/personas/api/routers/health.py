"""``GET /health``: the run and the database answer."""

from __future__ import annotations

from fastapi import APIRouter

from personas.api.deps import Service
from personas.api.schemas import Health, ProblemOut

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": ProblemOut, "description": "The database does not answer."}},
)
async def health(service: Service) -> Health:
    """Liveness and readiness: the run folder is loaded and the database answers a query."""
    storage = service.storage
    storage.ping()
    return Health(
        status="ok",
        model=service.model_name,
        personas=len(service.personas),
        users=len(service.user_ids),
        items=len(service.item_ids),
        database=storage.dialect,
        new_users=sum(storage.count_new_users().values()),
        events=storage.count_events(),
    )
