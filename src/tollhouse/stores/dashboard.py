"""The dashboard's own records (``tollhouse.ui``): dashboard users (scrypt-hashed passwords), sign-in
sessions and the audit log.

Kept beside the usage ledger: in a SQLite file next to the ledger's (``tollhouse-ui.db``), or in the
ledger's PostgreSQL database (tables prefixed ``ui_``). Sessions are stored by the SHA-256 of the cookie's
random value, so a copy of the database signs nobody in.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Protocol

from tollhouse.stores.sql import PgPool, SqliteDB


@dataclass(slots=True, frozen=True)
class User:
    name: str
    password_hash: str
    created_at: float


@dataclass(slots=True, frozen=True)
class Session:
    token_hash: str
    who: str  # "admin" (the admin key) or "user:<name>"
    csrf: str
    created_at: float
    expires_at: float


@dataclass(slots=True, frozen=True)
class AuditEntry:
    ts: float
    who: str
    action: str
    target: str
    detail: dict[str, Any]


class UiStore(Protocol):
    async def open(self) -> None: ...
    async def add_user(self, user: User) -> bool:
        """False when a user of that name exists."""
        ...

    async def user(self, name: str) -> User | None: ...
    async def users(self) -> list[User]: ...
    async def delete_user(self, name: str) -> bool: ...
    async def put_session(self, session: Session) -> None: ...
    async def session(self, token_hash: str, now: float) -> Session | None: ...
    async def delete_session(self, token_hash: str) -> None: ...
    async def audit(self, entry: AuditEntry) -> None: ...
    async def audit_log(self, limit: int, before: float | None = None) -> list[AuditEntry]: ...
    async def aclose(self) -> None: ...


_TABLES = (
    "CREATE TABLE IF NOT EXISTS ui_users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, "
    "created_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ui_sessions (token_hash TEXT PRIMARY KEY, who TEXT NOT NULL, "
    "csrf TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ui_sessions_expiry ON ui_sessions (expires_at)",
    "CREATE TABLE IF NOT EXISTS ui_audit (ts DOUBLE PRECISION NOT NULL, who TEXT NOT NULL, "
    "action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ui_audit_ts ON ui_audit (ts)",
)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        float(row["ts"]), row["who"], row["action"], row["target"], json.loads(row["detail"] or "{}")
    )


class SqliteUiStore:
    def __init__(self, path: str) -> None:
        self._db = SqliteDB(path, "dashboard store (SQLite)")

    async def open(self) -> None:
        await self._db.open(";\n".join(_TABLES) + ";")

    async def add_user(self, user: User) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT OR IGNORE INTO ui_users (name, password_hash, created_at) VALUES (?, ?, ?)",
                (user.name, user.password_hash, user.created_at),
            )
            return cur.rowcount == 1

        return await self._db.transaction(run)

    async def user(self, name: str) -> User | None:
        def run(conn: sqlite3.Connection) -> User | None:
            r = conn.execute("SELECT * FROM ui_users WHERE name = ?", (name,)).fetchone()
            return None if r is None else User(r["name"], r["password_hash"], r["created_at"])

        return await self._db.run(run)

    async def users(self) -> list[User]:
        def run(conn: sqlite3.Connection) -> list[User]:
            rows = conn.execute("SELECT * FROM ui_users ORDER BY name").fetchall()
            return [User(r["name"], r["password_hash"], r["created_at"]) for r in rows]

        return await self._db.run(run)

    async def delete_user(self, name: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM ui_sessions WHERE who = ?", (f"user:{name}",))
            return conn.execute("DELETE FROM ui_users WHERE name = ?", (name,)).rowcount == 1

        return await self._db.transaction(run)

    async def put_session(self, session: Session) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM ui_sessions WHERE expires_at < ?", (time.time(),))
            conn.execute(
                "INSERT INTO ui_sessions (token_hash, who, csrf, created_at, expires_at) VALUES (?,?,?,?,?)",
                (session.token_hash, session.who, session.csrf, session.created_at, session.expires_at),
            )

        await self._db.transaction(run)

    async def session(self, token_hash: str, now: float) -> Session | None:
        def run(conn: sqlite3.Connection) -> Session | None:
            r = conn.execute(
                "SELECT * FROM ui_sessions WHERE token_hash = ? AND expires_at > ?", (token_hash, now)
            ).fetchone()
            return None if r is None else Session(**dict(r))

        return await self._db.run(run)

    async def delete_session(self, token_hash: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM ui_sessions WHERE token_hash = ?", (token_hash,))

        await self._db.transaction(run)

    async def audit(self, entry: AuditEntry) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO ui_audit (ts, who, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                (entry.ts, entry.who, entry.action, entry.target, json.dumps(entry.detail)),
            )

        await self._db.transaction(run)

    async def audit_log(self, limit: int, before: float | None = None) -> list[AuditEntry]:
        def run(conn: sqlite3.Connection) -> list[AuditEntry]:
            rows = conn.execute(
                "SELECT * FROM ui_audit WHERE ts < ? ORDER BY ts DESC LIMIT ?",
                (before if before is not None else float("inf"), limit),
            ).fetchall()
            return [_entry(r) for r in rows]

        return await self._db.run(run)

    async def aclose(self) -> None:
        await self._db.aclose()


class PostgresUiStore:
    def __init__(self, dsn: str) -> None:
        self._pool = PgPool(dsn, _TABLES, lock_id=0x7501, store="dashboard store (PostgreSQL)")

    async def open(self) -> None:
        await self._pool.open()

    async def add_user(self, user: User) -> bool:
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                "INSERT INTO ui_users (name, password_hash, created_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (name) DO NOTHING",
                user.name,
                user.password_hash,
                user.created_at,
            )
        return bool(status.endswith(" 1"))

    async def user(self, name: str) -> User | None:
        async with self._pool.acquire() as conn:
            r = await conn.fetchrow("SELECT * FROM ui_users WHERE name = $1", name)
        return None if r is None else User(r["name"], r["password_hash"], r["created_at"])

    async def users(self) -> list[User]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM ui_users ORDER BY name")
        return [User(r["name"], r["password_hash"], r["created_at"]) for r in rows]

    async def delete_user(self, name: str) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM ui_sessions WHERE who = $1", f"user:{name}")
            status = await conn.execute("DELETE FROM ui_users WHERE name = $1", name)
        return bool(status.endswith(" 1"))

    async def put_session(self, session: Session) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM ui_sessions WHERE expires_at < $1", time.time())
            await conn.execute(
                "INSERT INTO ui_sessions (token_hash, who, csrf, created_at, expires_at) "
                "VALUES ($1, $2, $3, $4, $5)",
                session.token_hash,
                session.who,
                session.csrf,
                session.created_at,
                session.expires_at,
            )

    async def session(self, token_hash: str, now: float) -> Session | None:
        async with self._pool.acquire() as conn:
            r = await conn.fetchrow(
                "SELECT * FROM ui_sessions WHERE token_hash = $1 AND expires_at > $2", token_hash, now
            )
        return None if r is None else Session(**dict(r))

    async def delete_session(self, token_hash: str) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute("DELETE FROM ui_sessions WHERE token_hash = $1", token_hash)

    async def audit(self, entry: AuditEntry) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO ui_audit (ts, who, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
                entry.ts,
                entry.who,
                entry.action,
                entry.target,
                json.dumps(entry.detail),
            )

    async def audit_log(self, limit: int, before: float | None = None) -> list[AuditEntry]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM ui_audit WHERE ts < $1 ORDER BY ts DESC LIMIT $2",
                before if before is not None else float("inf"),
                limit,
            )
        return [_entry(r) for r in rows]

    async def aclose(self) -> None:
        await self._pool.aclose()
