"""What the service remembers: users created through the API and the events (interactions) of any user.

SQLAlchemy over SQLite (the embedded default, in WAL mode so readers never wait for the writer) or PostgreSQL
(by URL). Every write is one transaction (:meth:`Storage.writing`) that holds the user's write lock from its
first statement (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped advisory lock on the user id),
so what a write reads (the user's events, to place them in a persona) is still true when it commits.

Tables::

    new_users         user_id (pk), text (None unless the service keeps texts), text_hash (keyed BLAKE2b of
                      the text, keyed by this database's salt), persona, vector (float32 bytes), created_at
    events            id (pk), user_id (indexed; a run user or a new user), item_id, kind, created_at
    idempotency_keys  key_hash (pk), request_hash, user_id, status, body (the first response), created_at,
                      expires_at
    audit             id (pk), at, action, subject (keyed hash of the user id), detail (counts, no content)
    service_meta      key (pk), value: this database's random salt
    api_keys   key_id (pk), name, scopes, run_users, hash (argon2; never the key), created_at, revoked_at
    user_owners user_id (pk: a new user), key_id (the API key that created the user)

New tables are created in an existing database by ``create_schema``, so older databases need no migration
(their new users have no owner: only an admin key reaches them).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Boolean,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    String,
    Text,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    make_url,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

__all__ = ["MAX_ID_CHARS", "Receipt", "Storage", "StoredKey", "StoredReceipt", "StoredUser", "Write", "storable"]

MAX_ID_CHARS = 200
_WRITE = "personas_write"  # execution option of the write engine: its transactions begin IMMEDIATE on SQLite


class _Base(DeclarativeBase):
    pass


class _NewUser(_Base):
    __tablename__ = "new_users"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    text_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    persona: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class _Event(_Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(MAX_ID_CHARS), index=True)
    item_id: Mapped[str] = mapped_column(String(MAX_ID_CHARS))
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class _Receipt(_Base):
    __tablename__ = "idempotency_keys"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(MAX_ID_CHARS), index=True)
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class _Audit(_Base):
    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    action: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(String(200))


class _Meta(_Base):
    __tablename__ = "service_meta"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)


class _ApiKey(_Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_ID_CHARS))
    scopes: Mapped[str] = mapped_column(String(64))
    run_users: Mapped[bool] = mapped_column(Boolean)
    hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class _UserOwner(_Base):
    __tablename__ = "user_owners"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32))


@dataclass(frozen=True)
class StoredKey:
    """An API key as stored: its argon2 hash, never the key itself."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    run_users: bool
    hash: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class StoredUser:
    user_id: str
    text: str | None
    persona: int
    vector: np.ndarray | None
    created_at: datetime
    text_hash: str | None = None


@dataclass(frozen=True)
class Receipt:
    """What identifies one POST under an Idempotency-Key: the key (with whose it is) and the request."""

    key_hash: str
    request_hash: str
    ttl: timedelta

    @classmethod
    def of(cls, key: str, request: str, *, scope: str = "", ttl_s: float = 86_400.0) -> Receipt:
        """``request``: the method, path and canonical body; ``scope``: who sent it (keys are per client)."""
        key_hash = hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()
        return cls(key_hash, hashlib.sha256(request.encode()).hexdigest(), timedelta(seconds=ttl_s))


@dataclass(frozen=True)
class StoredReceipt:
    request_hash: str
    status: int
    body: str


def storable(value: str) -> bool:
    """Whether a string can be a key in both databases (PostgreSQL refuses NUL; neither takes lone surrogates)."""
    if "\x00" in value or len(value) > MAX_ID_CHARS:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _stored_key(row: Any) -> StoredKey:
    scopes = tuple(s for s in row.scopes.split(",") if s)
    return StoredKey(row.key_id, row.name, scopes, bool(row.run_users), row.hash, row.created_at, row.revoked_at)


def _sqlite_connect(connection: Any, _record: Any) -> None:
    # The driver's own transaction handling off: the "begin" listener below says BEGIN or BEGIN IMMEDIATE.
    connection.isolation_level = None
    cursor = connection.cursor()
    # WAL: readers do not block the writer. FULL: a commit is on disk (WAL fsynced) before it is acknowledged.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    # Deleted rows are overwritten with zeros, so an erased user's text does not linger in free pages.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # A write takes the database's write lock at BEGIN, before it reads what it will base its write on.
    immediate = connection.get_execution_options().get(_WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (its -wal and -shm files take the same mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    for companion in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        # Files made by earlier versions (0644) are tightened; someone else's file is left as it is.
        with suppress(FileNotFoundError, PermissionError):
            if companion.stat().st_mode & 0o077:
                companion.chmod(0o600)


class Write:
    """One write transaction on one user (see :meth:`Storage.writing`)."""

    def __init__(self, storage: Storage, session: Session, user_id: str) -> None:
        self._storage = storage
        self._session = session
        self.user_id = user_id
        self.now = datetime.now(UTC)

    def user(self) -> StoredUser | None:
        row = self._session.get(_NewUser, self.user_id)
        return None if row is None else _stored(row)

    def items(self) -> list[str]:
        """Item ids of all events of the user, oldest first (those added in this write included)."""
        self._session.flush()
        return list(self._session.scalars(self._storage.events_query, {"user_id": self.user_id}))

    def add_user(
        self, *, text: str | None, persona: int, vector: np.ndarray | None, keep_text: bool, owner: str | None = None
    ) -> None:
        blob = None if vector is None else np.asarray(vector, dtype="<f4").tobytes()
        digest = None if text is None else self._storage.text_hash(text)
        row = {
            "user_id": self.user_id,
            "text": text if keep_text else None,
            "text_hash": digest,
            "persona": persona,
            "vector": blob,
            "created_at": self.now,
        }
        inserts = self._storage.inserts
        self._session.execute(inserts["new_users"], row)
        if owner is not None:  # the API key that created the user (personas.api.auth)
            self._session.execute(inserts["user_owners"], {"user_id": self.user_id, "key_id": owner})

    def add_events(self, items: Sequence[str], kind: str = "interaction") -> None:
        if items:
            rows = [{"user_id": self.user_id, "item_id": i, "kind": kind, "created_at": self.now} for i in items]
            self._session.execute(self._storage.inserts["events"], rows)

    def set_persona(self, persona: int) -> None:
        row = self._session.get(_NewUser, self.user_id)
        if row is not None:
            row.persona = persona

    def save_receipt(self, receipt: Receipt, status: int, body: str) -> None:
        """Keep the response under its Idempotency-Key, in this transaction: stored with the write or not at
        all. A key already used makes the commit fail (IntegrityError) and the write is undone."""
        self._session.execute(delete(_Receipt).where(_Receipt.expires_at < self.now))
        row = {
            "key_hash": receipt.key_hash,
            "request_hash": receipt.request_hash,
            "user_id": self.user_id,
            "status": status,
            "body": body,
            "created_at": self.now,
            "expires_at": self.now + receipt.ttl,
        }
        self._session.execute(self._storage.inserts["idempotency_keys"], row)

    def erase(self) -> int:
        """Delete the user's row, events and stored responses; leave an audit record without content.
        Returns how many events were erased."""
        session, uid = self._session, self.user_id
        erased = session.execute(delete(_Event).where(_Event.user_id == uid)).rowcount  # type: ignore[attr-defined]
        session.execute(delete(_Receipt).where(_Receipt.user_id == uid))
        session.execute(delete(_NewUser).where(_NewUser.user_id == uid))
        session.execute(delete(_UserOwner).where(_UserOwner.user_id == uid))
        session.add(
            _Audit(at=self.now, action="delete_user", subject=self._storage.text_hash(uid), detail=f"events={erased}")
        )
        return int(erased)


#: Threads that keep a connection of the pool for events_of (serving: the event loop's thread reads).
_HELD_CONNECTIONS = 2


def _stored(row: Any) -> StoredUser:
    vector = None if row.vector is None else np.frombuffer(row.vector, dtype="<f4").copy()
    return StoredUser(row.user_id, row.text, row.persona, vector, row.created_at, row.text_hash)


class Storage:
    """New users and events in a SQL database. ``create_schema`` makes the tables when missing."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": not is_sqlite}
        self.path: Path | None = None
        if is_sqlite:
            # Requests are served from a thread pool; each connection is still used by one thread at a time.
            kwargs["connect_args"] = {"check_same_thread": False}
            database = make_url(url).database
            if database and database != ":memory:" and not database.startswith("file:"):
                self.path = Path(database)
                _private_file(self.path)
        elif url.startswith("postgresql"):
            # A database host that drops packets would otherwise hold a request for the OS's TCP timeout.
            kwargs["connect_args"] = {"connect_timeout": 5}
        self.engine: Engine = create_engine(url, **kwargs)
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writes = sessionmaker(self.engine.execution_options(**{_WRITE: True}), expire_on_commit=False)
        self._salt: bytes | None = None
        events, users = _Event.__table__, _NewUser.__table__
        #: A user's item ids, oldest first (shared with Write, which runs it in its own transaction).
        self.events_query = (
            select(events.c.item_id).where(events.c.user_id == bindparam("user_id")).order_by(events.c.id)
        )
        self._new_user = select(users).where(users.c.user_id == bindparam("user_id"))
        owners, keys = _UserOwner.__table__, _ApiKey.__table__
        self._owner = select(owners.c.key_id).where(owners.c.user_id == bindparam("user_id"))
        self._key = select(keys).where(keys.c.key_id == bindparam("key_id"))
        # Writes as Core inserts in the write's transaction (Write): the ORM's unit of work (flush, identity map,
        # object state) cost about as much as the rest of a POST /users besides the text encoder.
        tables = _Base.metadata.tables
        self.inserts = {
            name: insert(tables[name]) for name in ("new_users", "events", "user_owners", "idempotency_keys")
        }
        # The events query as the driver takes it, for reads on a connection each thread keeps (events_of).
        compiled = self.events_query.compile(dialect=self.engine.dialect)
        self._events_sql = str(compiled)
        self._events_positional = bool(compiled.positional)
        self._held = threading.local()
        self._held_all: list[Any] = []
        self._held_lock = threading.Lock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_schema(self) -> None:
        _Base.metadata.create_all(self.engine)
        # Databases made before texts were hashed lack the column (create_all adds tables, not columns).
        columns = {c["name"] for c in inspect(self.engine).get_columns("new_users")}
        if "text_hash" not in columns:
            with self.engine.begin() as connection:
                connection.execute(text("ALTER TABLE new_users ADD COLUMN text_hash VARCHAR(64)"))
        self.salt()

    def drop_schema(self) -> None:
        """Remove the tables and everything in them (tests start clean with it)."""
        _Base.metadata.drop_all(self.engine)
        self._salt = None

    def salt(self) -> bytes:
        """This database's random salt (made once, with the schema): the key of its text and id hashes."""
        if self._salt is None:
            with self._sessions() as session:
                found = session.get(_Meta, "salt")
            if found is None:
                try:
                    with self._writes.begin() as session:
                        session.add(_Meta(key="salt", value=secrets.token_bytes(16)))
                except IntegrityError:
                    pass  # another process made it first
                with self._sessions() as session:
                    found = session.get(_Meta, "salt")
            assert found is not None
            self._salt = bytes(found.value)
        return self._salt

    def text_hash(self, value: str) -> str:
        """Keyed BLAKE2b of a text (or id): equal texts match within this database, and the hash says nothing
        to whoever lacks the salt. For deduplication and audit, not for passwords."""
        return hashlib.blake2b(value.encode("utf-8"), key=self.salt(), digest_size=32).hexdigest()

    def ping(self) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar() == 1

    def journal_mode(self) -> str | None:
        """SQLite's journal mode (``wal`` expected); None for other databases."""
        return self._pragma("journal_mode")

    def synchronous(self) -> str | None:
        """SQLite's synchronous level as a number (2 = FULL); None for other databases."""
        return self._pragma("synchronous")

    def _pragma(self, name: str) -> str | None:
        if self.dialect != "sqlite":
            return None
        with self.engine.connect() as connection:
            return str(connection.execute(text(f"PRAGMA {name}")).scalar())

    def close(self) -> None:
        with self._held_lock:
            held, self._held_all = self._held_all, []
        for connection in held:
            with suppress(Exception):
                connection.close()
        self._held = threading.local()
        self.engine.dispose()

    # -- writes (one transaction each) ---------------------------------------------------------------
    @contextmanager
    def writing(self, user_id: str) -> Iterator[Write]:
        """A transaction holding the write lock of ``user_id`` from its start: writes on one user are serial,
        so one write's reads (events, persona) cannot be overtaken by another's. Commits on leaving, rolls
        back on an exception."""
        with self._writes.begin() as session:
            if self.dialect == "postgresql":
                # Run users have no row to lock FOR UPDATE; an advisory lock on the id covers every user.
                session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": user_id})
            yield Write(self, session, user_id)

    def add_user(
        self,
        user_id: str,
        *,
        text: str | None,
        persona: int,
        vector: np.ndarray | None,
        items: Sequence[str],
        kind: str = "interaction",
        keep_text: bool = True,
        owner: str | None = None,
    ) -> StoredUser:
        """Store a new user with their first items; ``owner`` (an API key id) is stored with them."""
        with self.writing(user_id) as write:
            write.add_user(text=text, persona=persona, vector=vector, keep_text=keep_text, owner=owner)
            write.add_events(items, kind)
        kept = np.asarray(vector, "<f4") if vector is not None else None
        return StoredUser(user_id, text if keep_text else None, persona, kept, write.now)

    def add_events(
        self, user_id: str, items: Sequence[str], *, kind: str = "interaction", persona: int | None = None
    ) -> int:
        """Record the events; when ``persona`` is given, the stored new user's persona changes with them."""
        with self.writing(user_id) as write:
            write.add_events(items, kind)
            if persona is not None:
                write.set_persona(persona)
        return len(items)

    def compact(self) -> None:
        """SQLite: move the WAL into the database file and truncate it, so erased rows leave no copy in the
        WAL (secure_delete has zeroed them in the pages). Best effort: readers may hold it for a while."""
        if self.dialect == "sqlite":
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- reads ---------------------------------------------------------------------------------------
    def lookup(self, user_id: str, *, new_user: bool = True) -> tuple[StoredUser | None, list[str]]:
        """The stored new user (None for others; not looked for when ``new_user`` is False) and the item ids of
        all events of ``user_id``, oldest first."""
        if not storable(user_id):
            return None, []
        # Core statements on one connection: this runs on every recommendation request.
        with self.engine.connect() as connection:
            items = list(connection.scalars(self.events_query, {"user_id": user_id}))
            row = connection.execute(self._new_user, {"user_id": user_id}).first() if new_user else None
        return (None if row is None else _stored(row)), items

    def events_of(self, user_id: str) -> list[str]:
        """``lookup(user_id, new_user=False)[1]`` at a fraction of the cost, for the hot path of recommendations:
        the driver runs the statement, compiled once, on a connection this thread keeps (no pool checkout, no
        compilation, no result objects). Any failure drops that connection and takes :meth:`lookup`, which
        raises SQLAlchemy's errors as before (an unavailable database included)."""
        if not storable(user_id):
            return []
        connection = getattr(self._held, "connection", None)
        if connection is None and len(self._held_all) >= _HELD_CONNECTIONS:
            return self.lookup(user_id, new_user=False)[1]  # the pool's connections stay for everything else
        try:
            if connection is None:
                connection = self.engine.raw_connection()
                self._held.connection = connection
                with self._held_lock:
                    self._held_all.append(connection)
            cursor = connection.cursor()
            try:
                cursor.execute(self._events_sql, (user_id,) if self._events_positional else {"user_id": user_id})
                items = [row[0] for row in cursor.fetchall()]
            finally:
                cursor.close()
            if self.engine.dialect.name != "sqlite":
                connection.rollback()  # no transaction left open between requests (SQLite's are autocommit)
            return items
        except Exception:
            self._held.connection = None
            if connection is not None:
                with self._held_lock:
                    self._held_all = [c for c in self._held_all if c is not connection]
                with suppress(Exception):
                    connection.invalidate()
            return self.lookup(user_id, new_user=False)[1]

    def receipt(self, receipt: Receipt) -> StoredReceipt | None:
        """The response kept under this Idempotency-Key, unless it has expired."""
        with self._sessions() as session:
            row = session.get(_Receipt, receipt.key_hash)
            if row is None or _aware(row.expires_at) < datetime.now(UTC):
                return None
            return StoredReceipt(row.request_hash, row.status, row.body)

    def audit_log(self) -> list[tuple[datetime, str, str, str]]:
        """(at, action, subject hash, detail) of every audited action, oldest first."""
        with self._sessions() as session:
            rows = session.execute(select(_Audit.at, _Audit.action, _Audit.subject, _Audit.detail).order_by(_Audit.id))
            return [(at, action, subject, detail) for at, action, subject, detail in rows]

    def count_new_users(self) -> dict[int, int]:
        """New users per persona."""
        with self._sessions() as session:
            rows = session.execute(select(_NewUser.persona, func.count()).group_by(_NewUser.persona)).all()
        return {int(persona): int(count) for persona, count in rows}

    def owner_of(self, user_id: str) -> str | None:
        """The id of the API key that created this new user (None: unknown, a run user, or created before
        keys existed)."""
        if not storable(user_id):
            return None
        with self.engine.connect() as connection:
            return connection.execute(self._owner, {"user_id": user_id}).scalar()

    # -- API keys ------------------------------------------------------------------------------------
    def add_key(self, key_id: str, *, name: str, scopes: Sequence[str], run_users: bool, hash: str) -> StoredKey:
        row = _ApiKey(
            key_id=key_id,
            name=name,
            scopes=",".join(scopes),
            run_users=run_users,
            hash=hash,
            created_at=datetime.now(UTC),
            revoked_at=None,
        )
        with self._sessions.begin() as session:
            session.add(row)
        return _stored_key(row)

    def key(self, key_id: str) -> StoredKey | None:
        with self.engine.connect() as connection:
            row = connection.execute(self._key, {"key_id": key_id}).first()
        return None if row is None else _stored_key(row)

    def api_keys(self) -> list[StoredKey]:
        with self._sessions() as session:
            rows = session.scalars(select(_ApiKey).order_by(_ApiKey.created_at, _ApiKey.key_id)).all()
        return [_stored_key(row) for row in rows]

    def revoke_key(self, key_id: str) -> StoredKey | None:
        """Mark the key revoked (kept for the record); None when no such key. Revoking twice keeps the first
        time."""
        with self._sessions.begin() as session:
            row = session.get(_ApiKey, key_id)
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            return _stored_key(row)

    def count_events(self) -> int:
        with self._sessions() as session:
            return int(session.scalar(select(func.count()).select_from(_Event)) or 0)


def _aware(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes (stored in UTC).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
