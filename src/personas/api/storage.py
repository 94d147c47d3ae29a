"""What the service remembers: users created through the API and the events (interactions) of any user.

SQLAlchemy over SQLite (the embedded default, in WAL mode so readers never wait for the writer) or PostgreSQL
(by URL). Every write is one transaction: a new user and their first items are stored together or not at all.

Tables::

    new_users  user_id (pk), text, persona, vector (float32 bytes, the text in the run's text space), created_at
    events     id (pk), user_id (indexed; a run user or a new user), item_id, kind, created_at
    api_keys   key_id (pk), name, scopes, run_users, hash (argon2; never the key), created_at, revoked_at
    user_owners user_id (pk: a new user), key_id (the API key that created the user)

New tables are created in an existing database by ``create_schema``, so older databases need no migration
(their new users have no owner: only an admin key reaches them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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
    event,
    func,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

__all__ = ["MAX_ID_CHARS", "Storage", "StoredKey", "StoredUser", "storable"]

MAX_ID_CHARS = 200


class _Base(DeclarativeBase):
    pass


class _NewUser(_Base):
    __tablename__ = "new_users"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
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


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    # WAL: readers do not block the writer; NORMAL is durable at checkpoints and much faster than FULL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Storage:
    """New users and events in a SQL database. ``create_schema`` makes the tables when missing."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": not is_sqlite}
        if is_sqlite:
            # Requests are served from a thread pool; each connection is still used by one thread at a time.
            kwargs["connect_args"] = {"check_same_thread": False}
        self.engine: Engine = create_engine(url, **kwargs)
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        events, users = _Event.__table__, _NewUser.__table__
        self._events_of = select(events.c.item_id).where(events.c.user_id == bindparam("user_id")).order_by(events.c.id)
        self._new_user = select(users).where(users.c.user_id == bindparam("user_id"))
        owners, keys = _UserOwner.__table__, _ApiKey.__table__
        self._owner = select(owners.c.key_id).where(owners.c.user_id == bindparam("user_id"))
        self._key = select(keys).where(keys.c.key_id == bindparam("key_id"))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_schema(self) -> None:
        _Base.metadata.create_all(self.engine)

    def drop_schema(self) -> None:
        """Remove the tables and everything in them (tests start clean with it)."""
        _Base.metadata.drop_all(self.engine)

    def ping(self) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar() == 1

    def journal_mode(self) -> str | None:
        """SQLite's journal mode (``wal`` expected); None for other databases."""
        if self.dialect != "sqlite":
            return None
        with self.engine.connect() as connection:
            return str(connection.execute(text("PRAGMA journal_mode")).scalar())

    def close(self) -> None:
        self.engine.dispose()

    # -- writes (one transaction each) ---------------------------------------------------------------
    def add_user(
        self,
        user_id: str,
        *,
        text: str | None,
        persona: int,
        vector: np.ndarray | None,
        items: Sequence[str],
        kind: str = "interaction",
        owner: str | None = None,
    ) -> StoredUser:
        """Store a new user with their first items; ``owner`` (an API key id) is stored with them."""
        now = datetime.now(UTC)
        blob = None if vector is None else np.asarray(vector, dtype="<f4").tobytes()
        with self._sessions.begin() as session:
            session.add(_NewUser(user_id=user_id, text=text, persona=persona, vector=blob, created_at=now))
            if owner is not None:
                session.add(_UserOwner(user_id=user_id, key_id=owner))
            session.add_all(_Event(user_id=user_id, item_id=item, kind=kind, created_at=now) for item in items)
        return StoredUser(user_id, text, persona, None if vector is None else np.asarray(vector, "<f4"), now)

    def add_events(
        self, user_id: str, items: Sequence[str], *, kind: str = "interaction", persona: int | None = None
    ) -> int:
        """Record the events; when ``persona`` is given, the stored new user's persona changes with them."""
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            session.add_all(_Event(user_id=user_id, item_id=item, kind=kind, created_at=now) for item in items)
            if persona is not None:
                row = session.get(_NewUser, user_id)
                if row is not None:
                    row.persona = persona
        return len(items)

    # -- reads ---------------------------------------------------------------------------------------
    def lookup(self, user_id: str, *, new_user: bool = True) -> tuple[StoredUser | None, list[str]]:
        """The stored new user (None for others; not looked for when ``new_user`` is False) and the item ids of
        all events of ``user_id``, oldest first."""
        if not storable(user_id):
            return None, []
        # Core statements on one connection: this runs on every recommendation request.
        with self.engine.connect() as connection:
            items = list(connection.scalars(self._events_of, {"user_id": user_id}))
            row = connection.execute(self._new_user, {"user_id": user_id}).first() if new_user else None
        if row is None:
            return None, items
        vector = None if row.vector is None else np.frombuffer(row.vector, dtype="<f4").copy()
        return StoredUser(row.user_id, row.text, row.persona, vector, row.created_at), items

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
