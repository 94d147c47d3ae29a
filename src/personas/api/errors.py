"""The one place where errors become HTTP responses, all with a :class:`~personas.api.schemas.ProblemOut` body.

NotFoundError (UnknownIdError)            404  names the id and what it names (user, item, persona)
FieldError (ConfigError)             422  names the field (body.text, query.n, ...)
RequestValidationError (FastAPI)     422  names every invalid field; malformed JSON names ``body``
other DataError / ConfigError        422
UnknownIdError (from the library)    404
SQLAlchemyError                      503  the database is unavailable; nothing was half-written
AccessError (PersonasError)          401  no key or a bad one (WWW-Authenticate); 403 a scope or user out of
                                          reach; 429 over a rate limit (Retry-After)
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from personas.api.schemas import ProblemOut
from personas.errors import ConfigError, DataError, PersonasError, UnknownIdError

__all__ = ["ACCESS", "INVALID", "NOT_FOUND", "AccessError", "FieldError", "NotFoundError", "install_error_handlers"]


class AccessError(PersonasError):
    """A request refused by access control (personas.api.auth): 401, 403 or 429."""

    def __init__(self, status: int, error: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.headers = headers or {}


class NotFoundError(UnknownIdError):
    """An id in a path or body that neither the run nor the database knows."""

    def __init__(self, kind: str, id_: str, where: str = "in this run or the database") -> None:
        super().__init__(f"No {kind} {id_!r} {where}.")
        self.kind = kind
        self.id = id_


class FieldError(ConfigError):
    """A request value outside the server's limits."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"The '{field}' field {message}")
        self.field = field


def _problem(status: int, error: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, "fields": [], **extra}, status_code=status)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields: list[str] = []
    messages: list[str] = []
    for error in exc.errors():
        loc = list(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            loc = ["body"]  # the position inside broken JSON is not a field
        name = _field_name(loc) or "body"
        if name not in fields:
            fields.append(name)
        messages.append(f"The '{name}' field is invalid: {error.get('msg', 'invalid value')}.")
    return _problem(422, "validation_error", " ".join(messages) or "Invalid request.", fields=fields)


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's "error parsing the body" (e.g. bytes that are not UTF-8): malformed input, like bad JSON.
        return _problem(422, "validation_error", f"The 'body' field is invalid: {exc.detail}.", fields=["body"])
    error = "not_found" if exc.status_code == 404 else "bad_request"
    return JSONResponse(
        {"error": error, "detail": str(exc.detail), "fields": []}, status_code=exc.status_code, headers=exc.headers
    )


async def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    kind = getattr(exc, "kind", None)
    id_ = getattr(exc, "id", None)
    return _problem(404, "not_found", str(exc), id=id_, kind=kind)


async def _bad_value(_request: Request, exc: Exception) -> JSONResponse:
    field = getattr(exc, "field", None)
    return _problem(422, "validation_error", str(exc), fields=[field] if field else [])


async def _access(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AccessError)
    return JSONResponse(
        {"error": exc.error, "detail": str(exc), "fields": []}, status_code=exc.status, headers=exc.headers
    )


async def _database(_request: Request, exc: Exception) -> JSONResponse:
    return _problem(
        503, "unavailable", f"The database is unavailable ({type(exc).__name__}); nothing was written. Retry later."
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(UnknownIdError, _not_found)
    app.add_exception_handler(DataError, _bad_value)
    app.add_exception_handler(ConfigError, _bad_value)
    app.add_exception_handler(SQLAlchemyError, _database)
    app.add_exception_handler(AccessError, _access)


#: OpenAPI documentation of the error responses every route may give.
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ProblemOut, "description": "Unknown id (named in the body)."}
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ProblemOut, "description": "Invalid request (the fields are named in the body)."}
}
ACCESS: dict[int | str, dict[str, Any]] = {
    401: {"model": ProblemOut, "description": "No API key, or not a valid one (see WWW-Authenticate)."},
    403: {"model": ProblemOut, "description": "The key lacks the scope, or the user is out of its reach."},
    429: {"model": ProblemOut, "description": "Over a rate limit; retry after Retry-After seconds."},
}
