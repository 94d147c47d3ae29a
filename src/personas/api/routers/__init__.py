"""One router per resource."""

from personas.api.routers import health, items, personas, users

__all__ = ["health", "items", "personas", "users"]
