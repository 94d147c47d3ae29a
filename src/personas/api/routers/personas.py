"""``GET /personas`` (paginated), ``GET /personas/tree`` (both levels), ``GET /personas/{group}`` (card + members),
``GET /map`` (the 2-D map)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from personas.api.auth import read_access
from personas.api.deps import Service
from personas.api.errors import ACCESS, INVALID, NOT_FOUND
from personas.api.schemas import MapOut, PersonaDetail, PersonaPage, TreeOut

router = APIRouter(tags=["personas"], dependencies=[Depends(read_access)], responses=ACCESS)


@router.get("/personas", response_model=PersonaPage, responses=INVALID)
async def list_personas(
    service: Service,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Personas to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size (capped by the server's max_page).")] = 20,
) -> PersonaPage:
    """The personas of the run, by group number, one page at a time."""
    return service.list_personas(offset, limit)


@router.get("/personas/tree", response_model=TreeOut)
async def persona_tree(service: Service) -> TreeOut:
    """Coarse personas (for reading) with their fine sub-personas (for recommending), with sizes, names and
    stability; in a one-level run every persona is a root."""
    return service.tree()


@router.get("/personas/{group}", response_model=PersonaDetail, responses={**NOT_FOUND, **INVALID})
async def get_persona(
    service: Service, group: Annotated[int, Path(description="The persona's group number.", examples=[0])]
) -> PersonaDetail:
    """One persona's full card (keywords, representatives, distinctive items, attribute skew) and members."""
    return service.persona(group)


@router.get("/map", response_model=MapOut, responses=INVALID)
async def persona_map(
    service: Service,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="Most users to draw.")] = None,
) -> MapOut:
    """Users' 2-D map positions and personas (a fixed sample when the run is large)."""
    return service.persona_map(limit)
