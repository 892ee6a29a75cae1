"""Connection plumbing shared by the SQL stores (keys, ledger, cache, semantic log, evaluation records).

``SqliteDB``: one stdlib ``sqlite3`` connection in WAL mode, used from worker threads one operation at a
time (a blocking call never runs on the event loop). ``open_pg_pool``: an ``asyncpg`` pool whose schema is
created under an advisory lock, so several workers starting together don't race ``CREATE … IF NOT EXISTS``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from tollhouse.config.base import ConfigError

T = TypeVar("T")


class SqliteDB:
    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self, schema: str) -> None:
        def connect() -> sqlite3.Connection:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(schema)
            return conn

        self._conn = await asyncio.to_thread(connect)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` in a worker thread; one call at a time."""
        conn = self._conn
        if conn is None:
            raise RuntimeError(f"SQLite database {self.path} is not open")
        async with self._lock:
            return await asyncio.to_thread(fn, conn)

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Like ``run``, inside one transaction."""

        def tx(conn: sqlite3.Connection) -> T:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                return fn(conn)

        return await self.run(tx)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            async with self._lock:
                await asyncio.to_thread(conn.close)


async def open_pg_pool(dsn: str, schema: Sequence[str], lock_id: int, max_size: int = 2) -> Any:
    """A small pool (writes are batched, reads are rare) with ``schema`` applied once."""
    import asyncpg

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id)
            for stmt in schema:
                await conn.execute(stmt)
    except BaseException:
        await pool.close()
        raise
    return pool


def dsn_from_env(env: str | None, section: str) -> str:
    """The PostgreSQL DSN named by ``<section>.postgres_dsn_env`` (secrets never live in config files)."""
    if not env:
        raise ConfigError(f"{section}.backend is postgres but {section}.postgres_dsn_env is not set")
    dsn = os.environ.get(env)
    if not dsn:
        raise ConfigError(f"{section}.postgres_dsn_env names {env!r}, but that variable is not set")
    return dsn


def tenant_model_where(tenant: str | None, model: str | None) -> tuple[str, tuple[str, ...]]:
    """A `` WHERE`` clause (or nothing) selecting rows of this tenant and/or model, with its arguments."""
    conds, args = [], []
    if tenant is not None:
        conds.append("tenant = ?")
        args.append(tenant)
    if model is not None:
        conds.append("model = ?")
        args.append(model)
    return (" WHERE " + " AND ".join(conds) if conds else ""), tuple(args)
