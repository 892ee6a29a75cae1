"""Connection plumbing shared by the SQL stores (keys, ledger, cache, semantic log, evaluation records).

``SqliteDB``: one stdlib ``sqlite3`` connection in WAL mode, used from worker threads one operation at a
time (a blocking call never runs on the event loop). ``PgPool``: an ``asyncpg`` pool whose schema is
created under an advisory lock, so several workers starting together don't race ``CREATE … IF NOT EXISTS``.

Both connect lazily and again after an outage: a store that could not be opened at start-up, or whose
server went away, is reconnected by the next operation. While the database cannot be reached every
operation raises ``StoreUnavailable`` naming the store (a 503 for a route; the cause is kept for the log).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from tollhouse.config.base import ConfigError
from tollhouse.errors import StoreUnavailable
from tollhouse.outage import cause

T = TypeVar("T")


class SqliteDB:
    """``store`` names the store in errors (e.g. ``"usage ledger (SQLite)"``)."""

    def __init__(self, path: str, store: str = "SQLite database") -> None:
        self.path = path
        self.store = store
        self._schema: str | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    def open_lazily(self, schema: str) -> None:
        """Apply ``schema`` and open the file on first use (nothing is created until then)."""
        self._schema = schema

    async def open(self, schema: str) -> None:
        """Open the file and apply ``schema``; ``StoreUnavailable`` when it cannot be opened (the next
        operation tries again)."""
        self._schema = schema
        try:
            self._conn = await asyncio.to_thread(self._connect, schema)
        except (sqlite3.OperationalError, OSError) as exc:
            raise StoreUnavailable(self.store, cause(exc)) from exc

    def _connect(self, schema: str) -> sqlite3.Connection:
        def connect() -> sqlite3.Connection:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(schema)
            return conn

        return connect()

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` in a worker thread; one call at a time. A database that is locked beyond
        the busy timeout, unreadable or could not be opened raises ``StoreUnavailable``."""
        if self._conn is None:
            if self._schema is None:
                raise RuntimeError(f"SQLite database {self.path} is not open")
            await self.open(self._schema)
        conn = self._conn
        assert conn is not None
        async with self._lock:
            try:
                return await asyncio.to_thread(fn, conn)
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(self.store, cause(exc)) from exc

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Like ``run``, inside one transaction."""

        def tx(conn: sqlite3.Connection) -> T:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                return fn(conn)

        return await self.run(tx)

    async def aclose(self) -> None:
        self._schema = None  # closed for good: no lazy reopen
        conn, self._conn = self._conn, None
        if conn is not None:
            async with self._lock:
                await asyncio.to_thread(conn.close)


CONNECT_TIMEOUT_S = 5.0


def _pg_down() -> tuple[type[BaseException], ...]:
    """The errors that mean the server cannot be reached (not a wrong query)."""
    import asyncpg

    return (
        OSError,
        TimeoutError,
        asyncpg.PostgresConnectionError,
        asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up
        asyncpg.exceptions.TooManyConnectionsError,
        asyncpg.InterfaceError,  # the connection or pool was closed under us
    )


class PgPool:
    """A small asyncpg pool (writes are batched, reads are rare) with ``schema`` applied once, opened on
    first use and reopened after an outage. ``store`` names the store in errors."""

    def __init__(self, dsn: str, schema: Sequence[str], lock_id: int, store: str, max_size: int = 2) -> None:
        self.dsn = dsn
        self.store = store
        self._schema = schema
        self._lock_id = lock_id
        self._max_size = max_size
        self._pool: Any = None
        self._opening = asyncio.Lock()

    async def open(self) -> None:
        """Connect now; ``StoreUnavailable`` if the server cannot be reached (the next use retries)."""
        await self._connected()

    async def _connected(self) -> Any:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                try:
                    self._pool = await open_pg_pool(self.dsn, self._schema, self._lock_id, self._max_size)
                except _pg_down() as exc:
                    raise StoreUnavailable(self.store, cause(exc)) from exc
        return self._pool

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        """A connection; a lost server (here or inside the block) drops the pool and raises
        ``StoreUnavailable``, and the next call connects afresh."""
        pool = await self._connected()
        try:
            async with pool.acquire(timeout=CONNECT_TIMEOUT_S) as conn:
                yield conn
        except _pg_down() as exc:
            if self._pool is pool:
                self._pool = None
                pool.terminate()
            raise StoreUnavailable(self.store, cause(exc)) from exc

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), CONNECT_TIMEOUT_S)
            except Exception:
                pool.terminate()


async def open_pg_pool(dsn: str, schema: Sequence[str], lock_id: int, max_size: int = 2) -> Any:
    """A small pool with ``schema`` applied once (under an advisory lock)."""
    import asyncpg

    # min_size 0: no background "connection floor" upkeep that logs a traceback per try during an outage.
    pool = await asyncpg.create_pool(dsn, min_size=0, max_size=max_size, timeout=CONNECT_TIMEOUT_S)
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
