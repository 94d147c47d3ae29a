"""Storage on both databases: round trips, one transaction per write, concurrent writers, odd keys."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sqlalchemy.exc import IntegrityError

from personas.api import Storage


def test_new_user_round_trip_keeps_text_persona_vector_and_items_in_order(storage: Storage) -> None:
    vector = np.array([0.1, -0.25, 1e-7, 3.5], dtype=np.float32)
    storage.add_user("u1", text="likes space films", persona=2, vector=vector, items=["b", "a", "c"])
    user, items = storage.lookup("u1")
    assert user is not None
    assert (user.user_id, user.text, user.persona) == ("u1", "likes space films", 2)
    assert user.vector is not None and user.vector.dtype == np.float32
    np.testing.assert_array_equal(user.vector, vector)  # bit-exact, not pickled
    assert items == ["b", "a", "c"]
    assert storage.count_new_users() == {2: 1}
    assert storage.count_events() == 3


def test_events_of_a_run_user_are_kept_without_a_new_user_row(storage: Storage) -> None:
    assert storage.add_events("196", ["50", "181"], kind="like") == 2
    storage.add_events("196", ["172"])
    user, items = storage.lookup("196")
    assert user is None
    assert items == ["50", "181", "172"]
    assert storage.lookup("other") == (None, [])


def test_add_events_moves_the_new_users_persona_in_the_same_write(storage: Storage) -> None:
    storage.add_user("u2", text=None, persona=-1, vector=None, items=[])
    storage.add_events("u2", ["x", "y"], persona=1)
    user, items = storage.lookup("u2")
    assert user is not None and user.persona == 1 and user.vector is None and user.text is None
    assert items == ["x", "y"]


def test_a_failed_write_leaves_nothing_behind(storage: Storage) -> None:
    storage.add_user("u3", text="first", persona=0, vector=None, items=["a"])
    # The same id again: the user row violates the primary key, so its events must not be stored either.
    with pytest.raises(IntegrityError):
        storage.add_user("u3", text="second", persona=1, vector=None, items=["b", "c"])
    user, items = storage.lookup("u3")
    assert user is not None and user.text == "first" and user.persona == 0
    assert items == ["a"]
    assert storage.count_events() == 1


def test_concurrent_writers_lose_nothing(storage: Storage) -> None:
    def write(worker: int) -> None:
        for i in range(15):
            storage.add_events(f"user-{worker % 3}", [f"item-{worker}-{i}"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(write, range(6)))
    assert storage.count_events() == 90
    _, items = storage.lookup("user-0")
    assert sorted(items) == sorted(f"item-{w}-{i}" for w in (0, 3) for i in range(15))


@pytest.mark.parametrize("key", ["\x00", "a\x00b", "\ud800", "x" * 1000])
def test_keys_no_database_can_hold_are_simply_unknown(storage: Storage, key: str) -> None:
    assert storage.lookup(key) == (None, [])


def test_sqlite_runs_in_wal_mode_and_postgres_is_postgres(storage: Storage) -> None:
    assert storage.ping()
    if storage.dialect == "sqlite":
        assert storage.journal_mode() == "wal"
    else:
        assert storage.dialect == "postgresql"
        assert storage.journal_mode() is None
