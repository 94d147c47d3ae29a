"""Dependencies shared by the routers: the service the app was built with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from personas.api.service import PersonaService

__all__ = ["Service", "get_service"]


async def get_service(request: Request) -> PersonaService:
    # async: a plain function dependency would cost a hop to the thread pool on every request.
    service: PersonaService = request.app.state.service
    return service


Service = Annotated[PersonaService, Depends(get_service)]
