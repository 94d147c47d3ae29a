"""Users: a run user's or a new user's persona and recommendations; new users; events; erasure.

Reads are ``async`` (short CPU work, no hop to the thread pool); writes and text encoding run in the pool.
Every POST takes an ``Idempotency-Key``: a retry with the same key and body gets the first response back
(header ``Idempotent-Replayed: true``) and writes nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Request, Response

from personas.api.auth import ReadableUser, WritableUser, Writer
from personas.api.deps import Service
from personas.api.errors import ACCESS, CONFLICT, INVALID, NOT_FOUND, TOO_LARGE
from personas.api.schemas import (
    DeletedOut,
    EventsIn,
    EventsOut,
    NewUserIn,
    NewUserOut,
    RecommendationsOut,
    UserPersonaOut,
)
from personas.api.service import PersonaService
from personas.api.storage import MAX_ID_CHARS, StoredReceipt

# Each user is reached only by the key that created it (or an admin key); see personas.api.auth.
router = APIRouter(prefix="/users", tags=["users"], responses=ACCESS)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="Any unique string per intended write (e.g. a UUID): a retry with the same key and body "
        "returns the first response and writes nothing; the same key with another body gives 409. Kept 24 h.",
    ),
]


def _answer(done: StoredReceipt, replayed: bool) -> Response:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return Response(done.body, status_code=done.status, media_type="application/json", headers=headers)


@router.get("/{user_id}/persona", response_model=UserPersonaOut, responses={**NOT_FOUND, **INVALID})
async def user_persona(service: Service, user_id: ReadableUser) -> UserPersonaOut:
    """Which persona a user belongs to (and where they sit on the map)."""
    return service.user_persona_of(user_id)


@router.get("/{user_id}/recommendations", response_model=RecommendationsOut, responses={**NOT_FOUND, **INVALID})
async def user_recommendations(
    request: Request,
    user_id: ReadableUser,
    # The maximum (the server's max_n) is written into the schema when the app is built (api.contract).
    n: Annotated[int, Query(ge=1, description="How many items (the maximum is the server's max_n).")] = 10,
) -> Response:
    """Top-n items with the reason for each: the persona's taste and the history item it resembles.

    Items recorded with POST /users/{user_id}/events are never recommended back. While the database is down,
    users of the run are still served from the run folder (header ``Personas-Degraded``), without those events.
    """
    # The service from the app, not through the Service dependency: each dependency FastAPI solves costs as much
    # as the answer itself on this path.
    service: PersonaService = request.app.state.service
    body, degraded = service.recommendations_json(user_id, n)
    headers = {"Personas-Degraded": "database unavailable; events recorded through the API not used"}
    # The hot path: serialised once here instead of validated again by FastAPI (response_model documents it).
    return Response(body, media_type="application/json", headers=headers if degraded else None)


@router.post("", response_model=NewUserOut, status_code=201, responses={**INVALID, **CONFLICT, **TOO_LARGE})
def create_user(
    service: Service, caller: Writer, body: Annotated[NewUserIn, Body()], idempotency_key: IdempotencyKey = None
) -> Response:
    """A new user from some text and/or a few items: stored, placed in a persona, recommended for. The user
    belongs to the calling key: other keys (but admin ones) cannot read it or add to it.

    The profile text itself is stored only when the server keeps texts (PERSONAS_SERVE_KEEP_TEXT); by default
    its vector and a salted hash are.
    """
    receipt = service.receipt_for(idempotency_key, f"POST /users\n{body.model_dump_json()}", caller.key_id or "")
    return _answer(
        *service.once(
            receipt, 201, lambda r: service.create_user(body.text, body.items, body.n, r, owner=caller.key_id)
        )
    )


@router.post(
    "/{user_id}/events",
    response_model=EventsOut,
    status_code=201,
    responses={**NOT_FOUND, **INVALID, **CONFLICT, **TOO_LARGE},
)
def add_events(
    service: Service,
    caller: Writer,
    user_id: WritableUser,
    body: Annotated[EventsIn, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Record interactions. All are stored or none (an unknown item id stores nothing)."""
    request = f"POST /users/{user_id}/events\n{body.model_dump_json()}"
    receipt = service.receipt_for(idempotency_key, request, caller.key_id or "")
    return _answer(*service.once(receipt, 201, lambda r: service.add_events(user_id, body.items, body.kind, r)))


@router.delete("/{user_id}", response_model=DeletedOut, responses={**NOT_FOUND, **CONFLICT, **INVALID})
def delete_user(service: Service, user_id: WritableUser) -> DeletedOut:
    """Erase a user created with POST /users: their text (or its hash), vector, persona, events and kept
    responses, in one transaction; an audit record keeps the time, the action and a keyed hash of the id.
    Users of the run folder give 409 (their data is part of the run's artefacts)."""
    return service.delete_user(user_id)
