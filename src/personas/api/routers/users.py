"""Users: a run user's or a new user's persona and recommendations; new users; events.

Reads are ``async`` (short CPU work, no hop to the thread pool); writes and text encoding run in the pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response

from personas.api.deps import Service
from personas.api.errors import INVALID, NOT_FOUND, TOO_LARGE
from personas.api.schemas import EventsIn, EventsOut, NewUserIn, NewUserOut, RecommendationsOut, UserPersonaOut

router = APIRouter(prefix="/users", tags=["users"])

UserId = Annotated[str, Path(description="A user of the run, or one created with POST /users.", examples=["196"])]


@router.get("/{user_id}/persona", response_model=UserPersonaOut, responses={**NOT_FOUND, **INVALID})
async def user_persona(service: Service, user_id: UserId) -> UserPersonaOut:
    """Which persona a user belongs to (and where they sit on the map)."""
    return service.user_persona_of(user_id)


@router.get("/{user_id}/recommendations", response_model=RecommendationsOut, responses={**NOT_FOUND, **INVALID})
async def user_recommendations(
    service: Service,
    user_id: UserId,
    # The maximum (the server's max_n) is written into the schema when the app is built (api.contract).
    n: Annotated[int, Query(ge=1, description="How many items (the maximum is the server's max_n).")] = 10,
) -> Response:
    """Top-n items with the reason for each: the persona's taste and the history item it resembles.

    Items recorded with POST /users/{user_id}/events are never recommended back.
    """
    # The hot path: serialised once here instead of validated again by FastAPI (response_model documents it).
    return Response(service.recommendations(user_id, n).model_dump_json(), media_type="application/json")


@router.post("", response_model=NewUserOut, status_code=201, responses={**INVALID, **TOO_LARGE})
def create_user(service: Service, body: Annotated[NewUserIn, Body()]) -> NewUserOut:
    """A new user from some text and/or a few items: stored, placed in a persona, recommended for."""
    return service.create_user(body.text, body.items, body.n)


@router.post(
    "/{user_id}/events", response_model=EventsOut, status_code=201, responses={**NOT_FOUND, **INVALID, **TOO_LARGE}
)
def add_events(service: Service, user_id: UserId, body: Annotated[EventsIn, Body()]) -> EventsOut:
    """Record interactions. All are stored or none (an unknown item id stores nothing)."""
    return service.add_events(user_id, body.items, body.kind)
