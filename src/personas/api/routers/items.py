"""``GET /items`` (search, paginated) and ``GET /items/{item_id}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from personas.api.auth import read_access
from personas.api.deps import Service
from personas.api.errors import ACCESS, INVALID, NOT_FOUND
from personas.api.schemas import ItemOut, ItemPage

router = APIRouter(prefix="/items", tags=["items"], dependencies=[Depends(read_access)], responses=ACCESS)


@router.get("", response_model=ItemPage, responses=INVALID)
async def search_items(
    service: Service,
    search: Annotated[str | None, Query(max_length=200, description="Part of a title, or an exact id.")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size (capped by the server's max_page).")] = 20,
) -> ItemPage:
    """Items whose title contains the search text (case-insensitive), most popular first."""
    return service.search_items(search, offset, limit)


@router.get("/{item_id}", response_model=ItemOut, responses={**NOT_FOUND, **INVALID})
async def get_item(
    service: Service, item_id: Annotated[str, Path(description="An item id of the run.", examples=["50"])]
) -> ItemOut:
    """One item: title, how many run users took it, the personas it is distinctive for."""
    return service.item(item_id)
