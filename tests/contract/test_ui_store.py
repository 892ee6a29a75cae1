"""The dashboard's store (users, sessions, audit log) on SQLite and real PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tollhouse.stores.dashboard import AuditEntry, PostgresUiStore, Session, SqliteUiStore, UiStore, User


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[UiStore]:
    s: UiStore
    if request.param == "sqlite":
        s = SqliteUiStore(str(tmp_path / "ui.db"))
    else:
        s = PostgresUiStore(request.getfixturevalue("pg_dsn"))
    await s.open()
    yield s
    await s.aclose()


async def test_users(store: UiStore) -> None:
    assert await store.add_user(User("ann", "scrypt$x", 1.0))
    assert not await store.add_user(User("ann", "scrypt$y", 2.0))  # names are unique
    assert await store.user("ann") == User("ann", "scrypt$x", 1.0)
    assert [u.name for u in await store.users()] == ["ann"]
    await store.put_session(Session("h1", "user:ann", "c", time.time(), time.time() + 60))
    assert await store.delete_user("ann")
    assert await store.user("ann") is None
    assert await store.session("h1", time.time()) is None  # a deleted user's sessions end with them
    assert not await store.delete_user("ann")


async def test_sessions_expire_and_end(store: UiStore) -> None:
    now = time.time()
    await store.put_session(Session("live", "admin", "tok", now, now + 60))
    await store.put_session(Session("old", "admin", "tok", now - 120, now - 60))
    got = await store.session("live", now)
    assert got is not None and got.who == "admin" and got.csrf == "tok"
    assert await store.session("old", now) is None
    await store.delete_session("live")
    assert await store.session("live", now) is None


async def test_audit_log_newest_first(store: UiStore) -> None:
    for i in range(5):
        await store.audit(AuditEntry(100.0 + i, "admin", "key.create", f"key_{i}", {"name": f"n{i}"}))
    entries = await store.audit_log(3)
    assert [e.target for e in entries] == ["key_4", "key_3", "key_2"]
    assert entries[0].detail == {"name": "n4"}
    assert [e.target for e in await store.audit_log(10, before=102.0)] == ["key_1", "key_0"]
