"""The server edge: what an untrusted client can send or hold open before (and around) the app.

- Request bodies are limited while they stream in (Starlette's ``RequestBodyLimitMiddleware``), so a chunked
  body is counted like one with a Content-Length, and a Content-Length over the limit is refused before a byte
  is read. Routes that take item lists get a smaller limit, sized from ``max_items`` and the run's longest item
  id, so a list of millions of ids is refused after a few kilobytes instead of being parsed into Python objects.
- Host allow-list (DNS rebinding), CORS allow-list, and security headers on every response.
- uvicorn: a header-size limit, a deadline for each whole request (slow-loris: uvicorn closes idle keep-alive
  connections, but not one that trickles a request), a keep-alive timeout, a connection cap and the backlog.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.util
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from personas.api.settings import ServeSettings

__all__ = [
    "DASHBOARD_CSP",
    "RouteBodyLimits",
    "SecurityHeaders",
    "install_docs",
    "install_edge",
    "uvicorn_options",
    "with_headers",
]

#: The dashboard runs only its own script and the bundled plotly.js: no inline script, no eval, no frames.
#: Inline styles are allowed: plotly.js writes its own <style> rules and style attributes.
DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)

# JSON escapes at most multiply a character by 12 (a \\uXXXX surrogate pair); an id costs its quotes, a comma
# and room for pretty-printing besides.
_ESCAPE = 12
_PER_ID = 16
_ENVELOPE = 1_024


class RouteBodyLimits:
    """Pick a body limit by route, then let Starlette's ``RequestBodyLimitMiddleware`` enforce it as bytes arrive.

    Over the limit, the app's body read raises Starlette's HTTPException(413), which the app's handler turns into
    the usual problem body (``api.errors``); the scope carries the limit that applied.
    """

    def __init__(self, app: ASGIApp, default: int, routes: Sequence[tuple[str, str, int]] = ()) -> None:
        self.app = app
        self.default = RequestBodyLimitMiddleware(app, default)
        self.routes = [
            (method, re.compile(path), RequestBodyLimitMiddleware(app, limit)) for method, path, limit in routes
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for method, path, limited in self.routes:
            if scope["method"] == method and path.fullmatch(scope["path"]):
                await limited(scope, receive, send)
                return
        await self.default(scope, receive, send)


def body_limits(settings: ServeSettings, longest_item_id: int) -> list[tuple[str, str, int]]:
    """Per-route limits: an events post holds only item ids; a new user holds text, item ids and n."""
    ids = settings.max_items * (_ESCAPE * max(longest_item_id, 1) + _PER_ID)
    events = min(settings.max_body_bytes, _ENVELOPE + ids)
    users = min(settings.max_body_bytes, _ENVELOPE + ids + _ESCAPE * settings.max_text_chars)
    return [("POST", r"/users/[^/]+/events", events), ("POST", r"/users/?", users)]


def with_headers(message: Message, headers: Iterable[tuple[bytes, bytes]]) -> Message:
    """An ``http.response.start`` message with the (lower-case) headers it does not set already added."""
    raw = list(message.get("headers", []))
    present = {name.lower() for name, _ in raw}
    raw += [(name, value) for name, value in headers if name not in present]
    return {**message, "headers": raw}


class SecurityHeaders:
    """Add the security headers to every response; a response that sets its own CSP (the docs page) keeps it."""

    def __init__(self, app: ASGIApp, csp: str = DASHBOARD_CSP) -> None:
        self.app = app
        self.csp = csp.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = with_headers(message, [*SECURITY_HEADERS, (b"content-security-policy", self.csp)])
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_edge(app: FastAPI, settings: ServeSettings, longest_item_id: int) -> None:
    """The edge middleware. Outermost (added last) first: security headers (on refusals too), the Host check,
    CORS, then the body limits around the app."""
    app.add_middleware(
        RouteBodyLimits,
        default=settings.max_body_bytes,
        routes=body_limits(settings, longest_item_id),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["*"],  # only the listed origins, and without credentials
            max_age=600,
        )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.resolved_allowed_hosts())
    app.add_middleware(SecurityHeaders)


# -- /docs without a CDN ------------------------------------------------------------------------------------
def _swagger_assets() -> str:
    # fastapi-offline ships a current Swagger UI dist (and nothing we need besides its files).
    spec = importlib.util.find_spec("fastapi_offline")
    assert spec is not None and spec.origin is not None, "fastapi-offline is a dependency of personas[serve]"
    return str(Path(spec.origin).parent / "static")


def _inline_script_hashes(html: str) -> str:
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts)


def install_docs(app: FastAPI, docs_url: str = "/docs", static_url: str = "/static/docs") -> None:
    """Swagger UI from local files; its one inline script is allowed by hash, not by 'unsafe-inline'."""
    app.mount(static_url, StaticFiles(directory=_swagger_assets()), name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{static_url}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{static_url}/swagger-ui.css",
            swagger_favicon_url=f"{root}{static_url}/favicon.png",
            oauth2_redirect_url=None,
        )
        html = bytes(page.body).decode("utf-8")
        # Swagger UI sets inline styles and draws icons as data: URIs.
        csp = (
            f"default-src 'self'; script-src 'self' {_inline_script_hashes(html)}; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; "
            "base-uri 'none'; frame-ancestors 'none'"
        )
        return HTMLResponse(html, headers={"content-security-policy": csp})


# -- uvicorn ------------------------------------------------------------------------------------------------
class _Deadline:
    """A client has ``seconds`` to send a whole request, counted from connecting or from the previous response.

    Only a request still being received is cut: one fully received that the app is still answering is left alone.
    """

    def __init__(self, protocol: Any, seconds: float) -> None:
        self.protocol = protocol
        self.seconds = seconds
        self.handle: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        self.cancel()
        self.handle = asyncio.get_running_loop().call_later(self.seconds, self.expire)

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def expire(self) -> None:
        self.handle = None
        cycle = self.protocol.cycle
        answering = cycle is not None and not cycle.response_complete and not cycle.more_body
        transport = self.protocol.transport
        if not answering and transport is not None and not transport.is_closing():
            transport.close()  # the next response re-arms the deadline of a request that was being answered


class _DeadlineHooks:
    """The request deadline on a uvicorn protocol: armed on connecting and after each response, cancelled on close.

    Put first among the bases; ``deadline_seconds`` is set by the subclass."""

    deadline_seconds: float
    transport: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._deadline = _Deadline(self, self.deadline_seconds)
        self._deadline.arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline.cancel()
        super().connection_lost(exc)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._deadline.arm()


def _header_limited_httptools(settings: ServeSettings) -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    limit, seconds = settings.max_header_bytes, settings.request_timeout

    class EdgeHttpToolsProtocol(_DeadlineHooks, HttpToolsProtocol):
        """uvicorn's httptools protocol with a limit on the request line and headers, and the request deadline."""

        deadline_seconds = seconds
        _header_bytes = 0
        _too_large = False

        def on_message_begin(self) -> None:
            self._header_bytes = 0
            super().on_message_begin()

        def _count(self, size: int) -> None:
            self._header_bytes += size
            if self._header_bytes > limit:
                self._too_large = True
                raise ValueError("request headers too large")  # httptools stops parsing; uvicorn answers 400

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)
            super().on_header(name, value)

        def send_400_response(self, msg: str) -> None:
            if self._too_large:
                msg = f"Request line and headers are limited to {limit} bytes."
            super().send_400_response(msg)

    return EdgeHttpToolsProtocol


def _deadline_h11(settings: ServeSettings) -> type[asyncio.Protocol]:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    limit, seconds = settings.max_header_bytes, settings.request_timeout

    class EdgeH11Protocol(_DeadlineHooks, H11Protocol):
        """uvicorn's h11 protocol with a limit on the request line and headers, and the request deadline.

        (h11's own limit applies only to headers still incomplete in its buffer: ones that arrive whole pass.)
        """

        deadline_seconds = seconds
        _head = b""

        def data_received(self, data: bytes) -> None:
            if self.conn.their_state is h11.IDLE:  # between requests: this is a request line and headers
                self._head += data
                end = self._head.find(b"\r\n\r\n")
                if (end if end >= 0 else len(self._head)) > limit:
                    # Written directly: h11 has seen no request yet, so it would refuse to send a response.
                    message = f"Request line and headers are limited to {limit} bytes.".encode()
                    self.transport.write(
                        b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
                        b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(message), message)
                    )
                    self.transport.close()
                    return
                if end >= 0:
                    self._head = b""
            else:
                self._head = b""
            super().data_received(data)

    return EdgeH11Protocol


def uvicorn_options(settings: ServeSettings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` that put the edge settings in force."""
    http = (
        _header_limited_httptools(settings)
        if importlib.util.find_spec("httptools") is not None
        else _deadline_h11(settings)
    )
    return {
        "http": http,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "limit_concurrency": settings.max_connections,
        "backlog": settings.backlog,
    }
