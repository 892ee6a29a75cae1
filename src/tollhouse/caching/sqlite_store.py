"""Persistent exact-cache store in SQLite (WAL), for the embedded mode: answers survive a restart and
are shared by the workers of one host. Calls run in a worker thread; expired rows are purged in batches."""

from __future__ import annotations

import sqlite3
import time

from tollhouse.stores.sql import SqliteDB

SCHEMA = """
CREATE TABLE IF NOT EXISTS response_cache (
  key TEXT PRIMARY KEY, tenant TEXT NOT NULL, model TEXT NOT NULL, value BLOB NOT NULL,
  expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS response_cache_expires ON response_cache (expires_at);
CREATE INDEX IF NOT EXISTS response_cache_tenant_model ON response_cache (tenant, model);
"""
PURGE_EVERY = 500  # writes between purges of expired rows


class SqliteCacheStore:
    def __init__(self, path: str) -> None:
        self.db = SqliteDB(path)
        self._writes = 0

    async def open(self) -> None:
        await self.db.open(SCHEMA)

    async def get(self, key: str) -> bytes | None:
        now = time.time()

        def q(c: sqlite3.Connection) -> bytes | None:
            row = c.execute(
                "SELECT value FROM response_cache WHERE key = ? AND expires_at > ?", (key, now)
            ).fetchone()
            return None if row is None else bytes(row[0])

        return await self.db.run(q)

    async def set(self, key: str, value: bytes, ttl_s: float, tenant: str, model: str) -> None:
        self._writes += 1
        purge = self._writes % PURGE_EVERY == 0
        now = time.time()

        def w(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT OR REPLACE INTO response_cache (key, tenant, model, value, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, tenant, model, value, now + ttl_s),
            )
            if purge:
                c.execute("DELETE FROM response_cache WHERE expires_at <= ?", (now,))

        await self.db.run(w)

    async def invalidate(self, *, tenant: str | None = None, model: str | None = None) -> int:
        where, args = tenant_model_where(tenant, model)

        def d(c: sqlite3.Connection) -> int:
            return c.execute(f"DELETE FROM response_cache{where}", args).rowcount

        return await self.db.run(d)

    async def entries(self) -> int:
        now = time.time()

        def n(c: sqlite3.Connection) -> int:
            return int(
                c.execute("SELECT COUNT(*) FROM response_cache WHERE expires_at > ?", (now,)).fetchone()[0]
            )

        return await self.db.run(n)

    async def aclose(self) -> None:
        await self.db.aclose()


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
