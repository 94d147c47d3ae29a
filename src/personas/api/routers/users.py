"""Users: a run user's or a new user's persona and recommendations; new users; events.

Reads are ``async`` (short CPU work, no hop to the thread pool); writes and text encoding run in the pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from personas.api.auth import ReadableUser, WritableUser, Writer
from personas.api.deps import Service
from personas.api.errors import ACCESS, INVALID, NOT_FOUND
from personas.api.schemas import EventsIn, EventsOut, NewUserIn, NewUserOut, RecommendationsOut, UserPersonaOut

# Each user is reached only by the key that created it (or an admin key); see personas.api.auth.
router = APIRouter(prefix="/users", tags=["users"], responses=ACCESS)


@router.get("/{user_id}/persona", response_model=UserPersonaOut, responses={**NOT_FOUND, **INVALID})
async def user_persona(service: Service, user_id: ReadableUser) -> UserPersonaOut:
    """Which persona a user belongs to (and where they sit on the map)."""
    return service.user_persona_of(user_id)


@router.get("/{user_id}/recommendations", response_model=RecommendationsOut, responses={**NOT_FOUND, **INVALID})
async def user_recommendations(
    service: Service,
    user_id: ReadableUser,
    n: Annotated[int, Query(ge=1, le=1000, description="How many items (capped by the server's max_n).")] = 10,
) -> Response:
    """Top-n items with the reason for each: the persona's taste and the history item it resembles.

    Items recorded with POST /users/{user_id}/events are never recommended back.
    """
    # The hot path: serialised once here instead of validated again by FastAPI (response_model documents it).
    return Response(service.recommendations(user_id, n).model_dump_json(), media_type="application/json")


@router.post("", response_model=NewUserOut, status_code=201, responses={**NOT_FOUND, **INVALID})
def create_user(service: Service, caller: Writer, body: Annotated[NewUserIn, Body()]) -> NewUserOut:
    """A new user from some text and/or a few items: stored, placed in a persona, recommended for. The user
    belongs to the calling key: other keys (but admin ones) cannot read it or add to it."""
    return service.create_user(body.text, body.items, body.n, owner=caller.key_id)


@router.post("/{user_id}/events", response_model=EventsOut, status_code=201, responses={**NOT_FOUND, **INVALID})
def add_events(service: Service, user_id: WritableUser, body: Annotated[EventsIn, Body()]) -> EventsOut:
    """Record interactions. All are stored or none (an unknown item id stores nothing)."""
    return service.add_events(user_id, body.items, body.kind)
