"""Persistent semantic index for the embedded mode: entries (float32 vector blobs, text, scope, entry key,
expiry) in a SQLite table (WAL), loaded into the in-process index at start and written through from a
worker thread. Other workers of the host pick up new rows by polling the table by id.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import Any

import numpy as np

from tollhouse.caching.semantic import ANN_MIN_ENTRIES, F32, SemanticHit, SemanticScope
from tollhouse.caching.sqlite_store import tenant_model_where
from tollhouse.caching.vectors import MemorySemanticIndex
from tollhouse.stores.sql import SqliteDB
from tollhouse.tasks import cancel

log = logging.getLogger("tollhouse.cache")

SCHEMA = """
CREATE TABLE IF NOT EXISTS semantic_cache (
  id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, model TEXT NOT NULL, context TEXT NOT NULL,
  text TEXT NOT NULL, entry_key TEXT NOT NULL, expires_at REAL NOT NULL, vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS semantic_cache_scope ON semantic_cache (tenant, model, context);
CREATE INDEX IF NOT EXISTS semantic_cache_expires ON semantic_cache (expires_at);
"""
TRIM_EVERY = 500  # writes between deletions of expired rows and rows past max_entries
POLL_BATCH = 1000
Row = tuple[str, str, str, str, str, float, bytes]


class SqliteSemanticIndex:
    """``SemanticIndex`` persisted in SQLite; searches never touch the database."""

    def __init__(
        self,
        path: str = "tollhouse-cache.db",
        *,
        threshold: float = 0.95,
        max_entries: int = 100_000,
        checks: bool = True,
        ann_min_entries: int = ANN_MIN_ENTRIES,
        poll_s: float = 2.0,
    ) -> None:
        self.path = path
        self.max_entries = max_entries
        self.poll_s = poll_s
        self.memory = MemorySemanticIndex(
            threshold=threshold, max_entries=max_entries, checks=checks, ann_min_entries=ann_min_entries
        )
        self.db = SqliteDB(path)
        self._last_id = 0
        self._own: set[int] = set()  # ids this process wrote and has not yet seen while polling
        self._writes = 0
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the database, drop expired rows, load the newest ``max_entries`` rows, start polling."""
        await self.memory.start()
        await self.db.open(SCHEMA)
        now = time.time()

        def load(c: sqlite3.Connection) -> tuple[int, list[Row]]:
            c.execute("DELETE FROM semantic_cache WHERE expires_at <= ?", (now,))
            top = c.execute("SELECT COALESCE(MAX(id), 0) FROM semantic_cache").fetchone()[0]
            rows = c.execute(
                "SELECT tenant, model, context, text, entry_key, expires_at, vector FROM semantic_cache "
                "WHERE id <= ? ORDER BY id DESC LIMIT ?",
                (top, self.max_entries),
            ).fetchall()
            return int(top), [tuple(r) for r in reversed(rows)]

        self._last_id, rows = await self.db.run(load)
        await asyncio.to_thread(self._apply, rows)
        if self.poll_s > 0:
            self._poller = asyncio.get_running_loop().create_task(self._poll_forever())

    def _apply(self, rows: list[Row]) -> None:
        dim = self.memory.vectors.dim
        batch = []
        for tenant, model, context, text, key, expires_at, blob in rows:
            vec = np.frombuffer(blob, dtype="<f4")
            if vec.shape != (dim,):
                continue  # written by an encoder of another size: unusable here
            batch.append(
                (SemanticScope(tenant, model, context), vec.astype(np.float32), text, key, expires_at)
            )
        self.memory.vectors.add_many(batch)

    async def search(self, scope: SemanticScope, vector: F32, text: str) -> SemanticHit | None:
        return await self.memory.search(scope, vector, text)

    async def add(
        self, scope: SemanticScope, vector: F32, text: str, entry_key: str, expires_at: float
    ) -> None:
        await self.memory.add(scope, vector, text, entry_key, expires_at)
        blob = np.ascontiguousarray(vector, dtype="<f4").reshape(-1).tobytes()
        self._writes += 1
        trim = self._writes % TRIM_EVERY == 0
        now = time.time()

        def write(c: sqlite3.Connection) -> int:
            with c:
                c.execute("BEGIN IMMEDIATE")
                c.execute(
                    "DELETE FROM semantic_cache WHERE tenant = ? AND model = ? AND context = ? "
                    "AND (entry_key = ? OR text = ?)",
                    (scope.tenant, scope.model, scope.context, entry_key, text),
                )
                cur = c.execute(
                    "INSERT INTO semantic_cache (tenant, model, context, text, entry_key, expires_at, "
                    "vector) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (scope.tenant, scope.model, scope.context, text, entry_key, expires_at, blob),
                )
                if trim:
                    _trim(c, now, self.max_entries)
                return int(cur.lastrowid or 0)

        row_id = await self.db.run(write)
        if self._poller is not None:
            self._own.add(row_id)

    async def invalidate(self, *, tenant: str | None = None, model: str | None = None) -> int:
        dropped = self.memory.drop(tenant=tenant, model=model)
        where, args = tenant_model_where(tenant, model)
        await self.db.run(lambda c: c.execute(f"DELETE FROM semantic_cache{where}", args).rowcount)
        return dropped

    def entries(self) -> int:
        return self.memory.entries()

    async def poll(self) -> int:
        """Load rows other processes added since the last poll; returns how many rows were read."""
        after = self._last_id

        def q(c: sqlite3.Connection) -> list[Any]:
            return c.execute(
                "SELECT id, tenant, model, context, text, entry_key, expires_at, vector FROM semantic_cache "
                "WHERE id > ? ORDER BY id LIMIT ?",
                (after, POLL_BATCH),
            ).fetchall()

        rows = await self.db.run(q)
        if not rows:
            return 0
        self._last_id = int(rows[-1][0])
        foreign: list[Row] = []
        for r in rows:
            if int(r[0]) in self._own:
                self._own.discard(int(r[0]))
            else:
                foreign.append(tuple(r[1:]))
        if foreign:
            await asyncio.to_thread(self._apply, foreign)
        return len(rows)

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                while await self.poll() > 0:
                    pass
            except Exception as exc:
                log.warning("semantic cache: polling SQLite failed", extra={"error": type(exc).__name__})

    async def aclose(self) -> None:
        await cancel(self._poller)
        self._poller = None
        await self.db.aclose()


def _trim(c: sqlite3.Connection, now: float, max_entries: int) -> None:
    c.execute("DELETE FROM semantic_cache WHERE expires_at <= ?", (now,))
    c.execute(
        "DELETE FROM semantic_cache WHERE id <= "
        "(SELECT id FROM semantic_cache ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (max_entries,),
    )
