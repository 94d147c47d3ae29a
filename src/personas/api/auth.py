"""Who may do what: API keys with scopes, per-user access, and rate limits.

Keys. A key reads ``pk_<key id>_<secret>``; only its argon2 hash is stored (table ``api_keys``). The key id in
it finds the one row to check, so a key costs one hash, never a scan. A verified key is remembered in memory
under the SHA-256 of the presented key (a fast hash: the key has 256 random bits, so nothing is gained by
guessing against it) and its row is re-read, without hashing, at most every ``key_recheck_seconds``: a key
revoked with ``personas keys revoke`` stops working within that time in every server process. When the
database does not answer a re-read, the remembered verdict stands (a revocation is written to that database).

Scopes::

    read    GET /personas, /map, /items and the caller's own users (persona, recommendations)
    write   POST /users (the new user is bound to the key) and events for the caller's own users
    admin   everything, every user

Users. A new user belongs to the key that created it: other keys get 404, as for an id that does not exist.
Users of the run (from the run folder) have histories that the reasons of their recommendations disclose,
so only admin keys and keys created with ``run_users`` reach them (403 for others: their ids are on the map).
``allow_anonymous_read`` lets requests without a key read as a ``run_users`` reader: a local demo of one's own
run, never a public service.

Limits. Every request counts against its client address; requests with a key also against the key. Over
either limit: 429 with ``Retry-After``. Every counted answer carries ``RateLimit-Limit``,
``RateLimit-Remaining`` and ``RateLimit-Reset`` of the shortest window of the key's limit (the address's for
requests without a key), and ``RateLimit-Policy`` (all limits). Whatever the settings, an address that
presented 10 wrong keys within a minute (each may cost a hash) has its next unknown keys refused with 429
until the minute is over.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.storage import Storage as LimitsStorage
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from personas.api.edge import with_headers
from personas.api.errors import AccessError, NotFoundError
from personas.api.settings import ServeSettings
from personas.api.storage import Storage, StoredKey
from personas.errors import ConfigError

__all__ = [
    "ANONYMOUS_READER",
    "OPEN",
    "SCOPES",
    "Access",
    "Caller",
    "RateLimitHeaders",
    "ReadableUser",
    "Reader",
    "WritableUser",
    "Writer",
    "create_key",
    "parse_scopes",
    "read_access",
    "revoke_key",
    "write_access",
]

ScopeName = Literal["read", "write", "admin"]
SCOPES: tuple[str, ...] = ("read", "write", "admin")

# argon2id at OWASP's minimum (19 MiB, 2 passes, 1 lane): ~20 ms per check, paid once per key per process.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_KEY = re.compile(r"pk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
_MAX_CACHED = 10_000
#: Wrong keys an address may present (each may cost a hash) before its key checks wait (429).


@dataclass(frozen=True)
class Caller:
    """Who is asking: a key (its id and scopes) or nobody (``key_id`` None)."""

    key_id: str | None
    scopes: frozenset[str]
    run_users: bool

    def can(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes


#: A request without a key when the server allows anonymous reads.
ANONYMOUS_READER = Caller(None, frozenset({"read"}), run_users=True)
#: Every request when auth is off.
OPEN = Caller(None, frozenset(SCOPES), run_users=True)


# -- keys: create, revoke (the library under `personas keys`) ------------------------------------------
def parse_scopes(scopes: str | Iterable[str]) -> tuple[str, ...]:
    """``"read,write"`` or ``["read", "write"]`` -> ``("read", "write")``, in the order of SCOPES."""
    given = [s.strip() for s in scopes.split(",")] if isinstance(scopes, str) else [s.strip() for s in scopes]
    given = [s for s in given if s]
    unknown = [s for s in given if s not in SCOPES]
    if unknown or not given:
        raise ConfigError(
            f"The 'scope' option must name one or more of {', '.join(SCOPES)}, comma-separated. "
            f"Got {','.join(given) or 'nothing'!r} instead."
        )
    return tuple(s for s in SCOPES if s in given)


def create_key(
    storage: Storage, scopes: str | Iterable[str], *, name: str = "", run_users: bool = False
) -> tuple[StoredKey, str]:
    """A new key: what is stored (its hash) and the key itself, which exists nowhere else afterwards."""
    chosen = parse_scopes(scopes)
    if len(name) > 200:
        raise ConfigError(f"The 'name' option must be at most 200 characters. Got {len(name)} instead.")
    key_id = secrets.token_hex(6)
    key = f"pk_{key_id}_{secrets.token_urlsafe(32)}"
    stored = storage.add_key(key_id, name=name, scopes=chosen, run_users=run_users, hash=_HASHER.hash(key))
    return stored, key


def revoke_key(storage: Storage, key_id: str) -> StoredKey:
    stored = storage.revoke_key(key_id)
    if stored is None:
        raise ConfigError(f"No API key {key_id!r} in {storage.url}; `personas keys list` shows the key ids.")
    return stored


# -- verification, remembered ------------------------------------------------------------------------
_FLIGHTS = 64  # lock stripes of KeyVerifier


@dataclass
class _Verified:
    caller: Caller
    checked_at: float


class KeyVerifier:
    """Checks presented keys against the stored hashes; remembers verified keys (see the module's docstring)."""

    def __init__(self, storage: Storage, recheck_seconds: float) -> None:
        self.storage = storage
        self.recheck_seconds = recheck_seconds
        self._verified: dict[bytes, _Verified] = {}
        self._lock = threading.Lock()
        # One verification per key at a time: the concurrent first requests of a client (a pool of connections
        # opened together, or one per worker thread) wait for the first one's hash instead of hashing the same
        # key each (16 at once cost ~450 ms on 2 cores). Striped by the key's digest, so the locks stay few.
        self._flights = [threading.Lock() for _ in range(_FLIGHTS)]

    def remembered(self, key: str) -> Caller | None:
        """The caller of a key verified less than ``recheck_seconds`` ago (no I/O), else None."""
        hit = self._verified.get(hashlib.sha256(key.encode()).digest())
        if hit is not None and time.monotonic() - hit.checked_at < self.recheck_seconds:
            return hit.caller
        return None

    def verify(self, key: str) -> Caller | None:
        """The caller of a valid key, None for an unknown, revoked or wrong one (reads the database; may hash)."""
        match = _KEY.fullmatch(key)
        if match is None:
            return None
        digest = hashlib.sha256(key.encode()).digest()
        with self._flights[digest[0] % _FLIGHTS]:
            return self._verify(key, match.group(1), digest)

    def _verify(self, key: str, key_id: str, digest: bytes) -> Caller | None:
        hit = self._verified.get(digest)  # read under the key's flight lock: filled by whoever hashed it first
        try:
            row = self.storage.key(key_id)
        except SQLAlchemyError:
            if hit is not None:
                return hit.caller  # no revocation can have been written to a database that does not answer
            raise
        if row is None or row.revoked_at is not None:
            with self._lock:
                self._verified.pop(digest, None)
            return None
        if hit is None:  # same SHA-256 as a key verified before: the same key, no need to hash again
            try:
                _HASHER.verify(row.hash, key)
            except (VerificationError, InvalidHashError):
                return None
        caller = Caller(row.key_id, frozenset(row.scopes), row.run_users)
        with self._lock:
            if hit is None and len(self._verified) >= _MAX_CACHED:
                self._verified.pop(next(iter(self._verified)))  # the oldest entry
            self._verified[digest] = _Verified(caller, time.monotonic())
        return caller


# -- rate limits -------------------------------------------------------------------------------------
def parse_rates(value: str, setting: str) -> list[RateLimitItem]:
    if not value.strip():
        return []
    try:
        return parse_many(value)
    except ValueError:
        raise ConfigError(
            f"The '{setting}' setting must be rates like '20/second;600/minute' (or '' for none). Got {value!r} "
            "instead."
        ) from None


@dataclass(frozen=True)
class _Window:
    limit: int
    remaining: int
    reset: int  # seconds


class _MemoryCounters(MemoryStorage):
    """``limits``' in-memory storage, with expired counters swept inline at most once a second instead of by a
    new timer thread every 10 ms under traffic: measured, those thread starts cost more than the counting.
    (Counters are also expired when read, so the sweep only bounds memory.)"""

    def __init__(self) -> None:
        super().__init__()
        self.timer.cancel()
        self._next_sweep = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 (replaces the parent's private timer start)
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + 1.0
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


def _counters(url: str) -> LimitsStorage:
    if url.rstrip("/") == "memory:":
        return _MemoryCounters()
    storage = storage_from_string(url)
    if not isinstance(storage, LimitsStorage):
        raise ConfigError(f"The 'rate_limit_storage' setting must be a synchronous storage URL. Got {url!r} instead.")
    return storage


class RateLimiter:
    """Fixed-window counters (``limits``, in memory by default) per client address and per key.

    Fixed windows: the cheapest counting ``limits`` offers (measured on the hot path: about half the time of the
    sliding window counter), and ``RateLimit-Reset`` is exactly when the window ends. A client may fit twice a
    window's amount around a window's end; the shorter window of each pair (20/second) bounds that burst.
    """

    def __init__(self, settings: ServeSettings) -> None:
        self.per_key = parse_rates(settings.rate_limit_per_key, "rate_limit_per_key")
        self.per_address = parse_rates(settings.rate_limit_per_address, "rate_limit_per_address")
        self.strategy = FixedWindowRateLimiter(_counters(settings.rate_limit_storage))
        policy = [*self.per_key, *self.per_address]
        self.policy = ", ".join(f"{item.amount};w={item.get_expiry()}" for item in policy)

    def _window(self, item: RateLimitItem, kind: str, who: str) -> _Window:
        stats = self.strategy.get_window_stats(item, kind, who)
        return _Window(item.amount, stats.remaining, max(1, math.ceil(stats.reset_time - time.time())))

    def hit(self, items: Sequence[RateLimitItem], kind: str, who: str, *, report: bool) -> _Window | None:
        """Count one request against each limit; 429 when over one. With ``report``, the state of the shortest
        window (for the RateLimit headers; one more look-up, so only for the limits the headers describe)."""
        for item in items:
            if not self.strategy.hit(item, kind, who):
                raise self.refusal(item, kind, who, f"requests for this {kind}")
        if not report or not items:
            return None
        return self._window(min(items, key=lambda item: item.get_expiry()), kind, who)

    def refusal(self, item: RateLimitItem, kind: str, who: str, what: str) -> AccessError:
        window = self._window(item, kind, who)
        return AccessError(
            429,
            "rate_limited",
            f"Too many {what}: at most {item.amount} per {item.get_expiry()} s. Retry in {window.reset} s.",
            headers={"Retry-After": str(window.reset), **self.headers(window)},
        )

    def headers(self, window: _Window) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(window.limit),
            "RateLimit-Remaining": str(window.remaining),
            "RateLimit-Reset": str(window.reset),
            "RateLimit-Policy": self.policy,
        }


class Access:
    """The app's access control: settings, key verifier and rate limiter (one per app)."""

    def __init__(self, settings: ServeSettings, storage: Storage) -> None:
        self.settings = settings
        self.keys = KeyVerifier(storage, settings.key_recheck_seconds)
        self.limiter = RateLimiter(settings)
        # Key guessing: each wrong key with a real key id costs a hash, so an address gets only a few a minute.
        failed = parse_rates(settings.rate_limit_failed_keys, "rate_limit_failed_keys")
        self.failed_keys = failed[0] if failed else None

    async def caller(self, request: Request, key: str | None) -> Caller:
        """Authenticate and count the request (401 / 429), without looking at scopes."""
        limiter = self.limiter

        def report(window: _Window | None) -> None:
            if window is not None:
                # Read by RateLimitHeaders when the answer starts (the route may build its own Response).
                request.state.rate_limit = limiter.headers(window)

        if limiter.per_address:
            address = request.client.host if request.client else "unknown"
            # The headers describe the key's limit when there is one, else the address's.
            keyed = key is not None and bool(limiter.per_key) and self.settings.auth
            report(limiter.hit(limiter.per_address, "address", address, report=not keyed))
        if not self.settings.auth:
            caller = OPEN
        elif key is None:
            if not self.settings.allow_anonymous_read:
                raise AccessError(
                    401,
                    "unauthorized",
                    "This request needs an API key: send 'Authorization: Bearer <key>' (or 'X-API-Key: <key>'). "
                    "The operator creates keys with `personas keys create --scope read`.",
                    headers={"WWW-Authenticate": 'Bearer realm="personas"'},
                )
            caller = ANONYMOUS_READER
        else:
            found = self.keys.remembered(key)
            if found is None:
                address = request.client.host if request.client else "unknown"
                guard = self.failed_keys
                if guard is not None and not limiter.strategy.test(guard, "failed key", address):
                    raise limiter.refusal(guard, "failed key", address, "wrong API keys from this address")
                found = await run_in_threadpool(self.keys.verify, key)
                if found is None and guard is not None:
                    limiter.strategy.hit(guard, "failed key", address)
            if found is None:
                raise AccessError(
                    401,
                    "unauthorized",
                    "The API key is not valid: unknown, revoked or mistyped (`personas keys list` shows the keys).",
                    headers={"WWW-Authenticate": 'Bearer realm="personas", error="invalid_token"'},
                )
            caller = found
            if limiter.per_key and caller.key_id is not None:
                report(limiter.hit(limiter.per_key, "key", caller.key_id, report=True))
        return caller


# -- FastAPI dependencies ----------------------------------------------------------------------------
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer pk_...`.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same API key, another header.")


Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
KeyHeader = Annotated[str | None, Depends(_api_key)]


async def _caller_with(
    scope: ScopeName, request: Request, bearer: HTTPAuthorizationCredentials | None, header: str | None
) -> Caller:
    """The caller, who holds ``scope`` (401, 403 or 429 otherwise)."""
    access: Access = request.app.state.access
    caller = await access.caller(request, bearer.credentials if bearer is not None else header)
    if not caller.can(scope):
        raise AccessError(
            403,
            "forbidden",
            f"This request needs the '{scope}' scope; this "
            f"{'key has ' + ', '.join(sorted(caller.scopes)) if caller.key_id else 'anonymous access has read'}"
            f". Create a key with `personas keys create --scope {scope}`.",
        )
    return caller


def _requires(scope: ScopeName) -> Callable[..., Awaitable[Caller]]:
    async def dependency(request: Request, bearer: Bearer, header: KeyHeader) -> Caller:
        return await _caller_with(scope, request, bearer, header)

    return dependency


#: Dependencies: the caller, who holds the scope (401, 403 or 429 otherwise).
read_access = _requires("read")
write_access = _requires("write")
Reader = Annotated[Caller, Depends(read_access)]
Writer = Annotated[Caller, Depends(write_access)]

UserId = Annotated[str, Path(description="A user of the run, or one created with POST /users.", examples=["196"])]


def check_user(caller: Caller, user_id: str, service: Any) -> None:
    """404 for a new user of another key (as for no user at all); 403 for a run user without the grant."""
    if caller.admin:
        return
    if user_id in service.user_row:
        if caller.run_users:
            return
        raise AccessError(
            403,
            "forbidden",
            f"User {user_id!r} is a user of the run: their history is reached only with an admin key or a key "
            "created with `personas keys create --run-users`.",
        )
    if caller.key_id is None or service.storage.owner_of(user_id) != caller.key_id:
        raise NotFoundError("user", user_id)


# One dependency each, the access check inlined rather than a sub-dependency (Reader, Service): FastAPI's
# dependency solving is most of a read's cost once the answer is precomputed. Same checks, same order.
async def _readable(request: Request, user_id: UserId, bearer: Bearer, header: KeyHeader) -> str:
    check_user(await _caller_with("read", request, bearer, header), user_id, request.app.state.service)
    return user_id


async def _writable(request: Request, user_id: UserId, bearer: Bearer, header: KeyHeader) -> str:
    check_user(await _caller_with("write", request, bearer, header), user_id, request.app.state.service)
    return user_id


#: A user id from the path that the caller may read (write): theirs, or any with admin.
ReadableUser = Annotated[str, Depends(_readable)]
WritableUser = Annotated[str, Depends(_writable)]


class RateLimitHeaders:
    """Adds the RateLimit headers worked out by the access check to the answer (pure ASGI: cheap)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: dict[str, str] | None = scope.get("state", {}).get("rate_limit")
                if headers:
                    message = with_headers(message, [(k.lower().encode(), v.encode()) for k, v in headers.items()])
            await send(message)

        await self.app(scope, receive, send_with_headers)
