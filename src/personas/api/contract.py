"""The OpenAPI schema states the limits the server enforces, so that what the schema allows is what is accepted.

The limits come from the settings (``max_n``, ``max_items``, ``max_text_chars``) and the run (its item ids), so
they are written into the generated schema when the app is built rather than into the route signatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from personas.api.settings import ServeSettings

__all__ = ["ENUM_ITEMS_UP_TO", "install_contract"]

#: Catalogues up to this size list their item ids in the schema (an enum); larger ones state only the id length.
ENUM_ITEMS_UP_TO = 20_000


def _string_branch(prop: dict[str, Any]) -> dict[str, Any]:
    """The string part of an optional string property (``anyOf: [string, null]``), or the property itself."""
    for branch in prop.get("anyOf", []):
        if branch.get("type") == "string":
            return branch
    return prop


def _item_ids(schema: dict[str, Any], settings: ServeSettings, item_ids: Sequence[str]) -> None:
    schema["maxItems"] = settings.max_items
    ids = schema.setdefault("items", {})
    if len(item_ids) <= ENUM_ITEMS_UP_TO:
        ids["enum"] = list(item_ids)
    else:
        ids["maxLength"] = max(map(len, item_ids), default=1)
    ids["description"] = "An item id of the run (GET /items)."


def state_limits(schema: dict[str, Any], settings: ServeSettings, item_ids: Sequence[str]) -> dict[str, Any]:
    """Write the server's limits into a generated OpenAPI schema (in place) and return it."""
    for parameter in schema["paths"]["/users/{user_id}/recommendations"]["get"].get("parameters", []):
        if parameter["name"] == "n":
            parameter["schema"]["maximum"] = settings.max_n
    components = schema["components"]["schemas"]
    new_user = components["NewUserIn"]["properties"]
    new_user["n"]["maximum"] = settings.max_n
    text = _string_branch(new_user["text"])
    text["maxLength"] = settings.max_text_chars
    text["pattern"] = "^[^\\u0000]*$"  # no NUL (schemas._no_nul: PostgreSQL cannot store it)
    _item_ids(new_user["items"], settings, item_ids)
    _item_ids(components["EventsIn"]["properties"]["items"], settings, item_ids)
    return schema


def install_contract(app: FastAPI, settings: ServeSettings, item_ids: Sequence[str]) -> None:
    """Make ``app.openapi()`` return the schema with the limits stated (built once, then cached by FastAPI)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = state_limits(build(), settings, item_ids)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
