"""The one place where errors become HTTP responses, all with a :class:`~personas.api.schemas.ProblemOut` body.

NotFoundError (UnknownIdError)            404  names the id in the path and what it names (user, item, persona)
FieldError (ConfigError)             422  names the field (body.text, query.n, ...)
UnknownReferenceError (FieldError)   422  an unknown id inside the body: names the field, the id and its kind
RequestValidationError (FastAPI)     422  names every invalid field; malformed JSON names ``body``
other DataError / ConfigError        422
UnknownIdError (from the library)    404
ConflictError                        409  the request cannot apply to that resource (e.g. erasing a run user)
SQLAlchemyError                      503  the database is unavailable; nothing was half-written; Retry-After
HTTPException 413 (body limit)       413  names the limit that applied; the connection is closed
UnavailableError                     503  a part of the service failed (e.g. the text encoder); no server detail
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
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

from personas.api.schemas import ProblemOut
from personas.errors import ConfigError, DataError, PersonasError, UnknownIdError

__all__ = [
    "ACCESS",
    "CONFLICT",
    "INVALID",
    "NOT_FOUND",
    "RETRY_AFTER_SECONDS",
    "TOO_LARGE",
    "AccessError",
    "ConflictError",
    "FieldError",
    "NotFoundError",
    "UnavailableError",
    "UnknownReferenceError",
    "install_error_handlers",
]

#: What a 503 tells a client to wait before retrying (the database usually answers again within seconds).
RETRY_AFTER_SECONDS = 2


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


class UnknownReferenceError(FieldError):
    """An id inside a request body that the run does not know: the request is invalid; its URL is fine (not 404)."""

    def __init__(self, field: str, kind: str, id_: str) -> None:
        super().__init__(field, f"names no {kind} of this run: {id_!r}. Use the ids of GET /items.")
        self.kind = kind
        self.id = id_


class ConflictError(PersonasError):
    """A request that cannot apply to the resource it names, whatever the client retries."""

    def __init__(self, message: str, id_: str | None = None) -> None:
        super().__init__(message)
        self.id = id_


class UnavailableError(PersonasError):
    """A part of the service failed on this request. The message is for clients: no path, no internals."""


def _problem(status: int, error: str, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, "fields": [], **extra}, status_code=status, headers=headers)


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


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 413:
        limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
        return _problem(
            413,
            "payload_too_large",
            f"The request body of {request.method} {request.url.path} is limited to {limit} bytes.",
            # The rest of the body is not read: closing is the only way to be done with it.
            headers={"connection": "close"},
            fields=["body"],
        )
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
    extra: dict[str, Any] = {"id": exc.id, "kind": exc.kind} if isinstance(exc, UnknownReferenceError) else {}
    return _problem(422, "validation_error", str(exc), fields=[field] if field else [], **extra)


async def _conflict(_request: Request, exc: Exception) -> JSONResponse:
    return _problem(409, "conflict", str(exc), id=getattr(exc, "id", None))


async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    return _problem(503, "unavailable", str(exc), headers={"retry-after": str(RETRY_AFTER_SECONDS)})


async def _access(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AccessError)
    return JSONResponse(
        {"error": exc.error, "detail": str(exc), "fields": []}, status_code=exc.status, headers=exc.headers
    )


async def _database(_request: Request, exc: Exception) -> JSONResponse:
    return _problem(
        503,
        "unavailable",
        f"The database is unavailable ({type(exc).__name__}); nothing was written. Retry later.",
        headers={"retry-after": str(RETRY_AFTER_SECONDS)},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(UnknownIdError, _not_found)
    app.add_exception_handler(ConflictError, _conflict)
    app.add_exception_handler(UnavailableError, _unavailable)
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
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": ProblemOut, "description": "The request body is over the limit of this route (named in the body)."}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ProblemOut, "description": "The request cannot apply to this resource (the body says why)."}
}
ACCESS: dict[int | str, dict[str, Any]] = {
    401: {"model": ProblemOut, "description": "No API key, or not a valid one (see WWW-Authenticate)."},
    403: {"model": ProblemOut, "description": "The key lacks the scope, or the user is out of its reach."},
    429: {"model": ProblemOut, "description": "Over a rate limit; retry after Retry-After seconds."},
}
