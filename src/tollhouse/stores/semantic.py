"""``SemanticLog``: where semantic-cache entries persist and how processes share them. Searching stays in
process (``caching.vectors``); a log keeps the entries (scope, text, vector, entry key, expiry) and the
invalidations, and hands each process what the others changed. Two backends: a SQLite table (persistent;
the workers of one host poll it) and a Redis Stream (every replica replays it, then follows it; ADR 0009).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from tollhouse.stores.sql import SqliteDB, tenant_model_where

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class SemanticRow:
    """One entry: its scope (tenant, requested model, context hash), the text and its float32 vector, the
    exact-cache key of the answer it points to, and its expiry (epoch seconds)."""

    tenant: str
    model: str
    context: str
    text: str
    entry_key: str
    expires_at: float
    vector: F32


@dataclass(frozen=True, slots=True)
class SemanticDrop:
    """An invalidation: every entry of this tenant and/or model (both None: every entry)."""

    tenant: str | None = None
    model: str | None = None


SemanticChange = SemanticRow | SemanticDrop


class SemanticLog(Protocol):
    async def open(self) -> None:
        """Connect / create the table. Raises when the backend cannot be reached."""
        ...

    def load(self) -> AsyncIterator[list[SemanticChange]]:
        """Pages of changes that rebuild the live entries when applied in order, oldest first (expired rows
        left out); ``read`` continues after them. Raises on a backend error."""
        ...

    async def append(self, row: SemanticRow) -> None:
        """Persist an entry; it replaces any entry of the same scope with the same key or text."""
        ...

    async def drop(self, tenant: str | None, model: str | None) -> None:
        """Persist an invalidation of this tenant and/or model (both None: everything)."""
        ...

    async def read(self, wait: bool) -> list[SemanticChange]:
        """What other instances changed since the last ``load`` / ``read``, in order; this instance's own
        changes and expired rows are left out. ``wait``: first wait up to the backend's interval. Raises on
        a backend error."""
        ...

    async def aclose(self) -> None: ...


# ---- SQLite ---------------------------------------------------------------------------------------------

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS semantic_cache (
  id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, model TEXT NOT NULL, context TEXT NOT NULL,
  text TEXT NOT NULL, entry_key TEXT NOT NULL, expires_at REAL NOT NULL, vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS semantic_cache_scope ON semantic_cache (tenant, model, context);
CREATE INDEX IF NOT EXISTS semantic_cache_expires ON semantic_cache (expires_at);
"""
_COLUMNS = "tenant, model, context, text, entry_key, expires_at, vector"
TRIM_EVERY = 500  # writes between deletions of expired rows and rows past max_entries
POLL_BATCH = 1000
OWN_MAX = 100_000  # own row ids remembered between reads


def _blob(vector: F32) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").reshape(-1).tobytes()


def _vector(blob: bytes) -> F32:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def _sqlite_row(r: Any) -> SemanticRow:
    return SemanticRow(r[0], r[1], r[2], r[3], r[4], float(r[5]), _vector(bytes(r[6])))


class SqliteSemanticLog:
    """Entries in a SQLite table (WAL), bounded to about ``max_entries`` rows. Other workers on the file
    find new rows by polling the table by id every ``poll_s``; an invalidation deletes rows, which the
    other workers' indexes keep until their next start."""

    def __init__(self, path: str, *, max_entries: int = 100_000, poll_s: float = 2.0) -> None:
        self.path = path
        self.max_entries = max_entries
        self.poll_s = poll_s
        self.db = SqliteDB(path, "semantic cache log (SQLite)")
        self._last_id = 0
        self._own: set[int] = set()  # ids this instance wrote and has not yet passed while reading
        self._writes = 0

    async def open(self) -> None:
        await self.db.open(_SQLITE_SCHEMA)

    async def load(self) -> AsyncIterator[list[SemanticChange]]:
        """Deletes expired rows, then yields the newest ``max_entries`` rows in one page."""
        now = time.time()

        def q(c: sqlite3.Connection) -> tuple[int, list[SemanticChange]]:
            c.execute("DELETE FROM semantic_cache WHERE expires_at <= ?", (now,))
            top = c.execute("SELECT COALESCE(MAX(id), 0) FROM semantic_cache").fetchone()[0]
            rows = c.execute(
                f"SELECT {_COLUMNS} FROM semantic_cache WHERE id <= ? ORDER BY id DESC LIMIT ?",
                (top, self.max_entries),
            ).fetchall()
            return int(top), [_sqlite_row(r) for r in reversed(rows)]

        self._last_id, page = await self.db.run(q)
        if page:
            yield page

    async def append(self, row: SemanticRow) -> None:
        blob = _blob(row.vector)
        self._writes += 1
        trim = self._writes % TRIM_EVERY == 0
        now = time.time()

        def write(c: sqlite3.Connection) -> int:
            with c:
                c.execute("BEGIN IMMEDIATE")
                c.execute(
                    "DELETE FROM semantic_cache WHERE tenant = ? AND model = ? AND context = ? "
                    "AND (entry_key = ? OR text = ?)",
                    (row.tenant, row.model, row.context, row.entry_key, row.text),
                )
                cur = c.execute(
                    f"INSERT INTO semantic_cache ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (row.tenant, row.model, row.context, row.text, row.entry_key, row.expires_at, blob),
                )
                if trim:
                    _trim(c, now, self.max_entries)
                return int(cur.lastrowid or 0)

        row_id = await self.db.run(write)
        if len(self._own) >= OWN_MAX:  # nobody reads: forget (a row read back replaces itself, harmlessly)
            self._own.clear()
        self._own.add(row_id)

    async def drop(self, tenant: str | None, model: str | None) -> None:
        where, args = tenant_model_where(tenant, model)
        await self.db.run(lambda c: c.execute(f"DELETE FROM semantic_cache{where}", args).rowcount)

    async def read(self, wait: bool) -> list[SemanticChange]:
        """Rows other workers added (they are not told about deletions)."""
        if wait:
            await asyncio.sleep(self.poll_s)
        out: list[SemanticChange] = []
        while True:
            rows = await self.db.run(functools.partial(_rows_after, self._last_id))
            if not rows:
                return out
            self._last_id = rows[-1][0]
            now = time.time()
            for row_id, row in rows:
                if row_id in self._own:
                    self._own.discard(row_id)
                elif row.expires_at > now:
                    out.append(row)
            if len(rows) < POLL_BATCH:
                return out

    async def aclose(self) -> None:
        await self.db.aclose()


def _rows_after(after: int, c: sqlite3.Connection) -> list[tuple[int, SemanticRow]]:
    rows = c.execute(
        f"SELECT id, {_COLUMNS} FROM semantic_cache WHERE id > ? ORDER BY id LIMIT ?", (after, POLL_BATCH)
    ).fetchall()
    return [(int(r[0]), _sqlite_row(tuple(r[1:]))) for r in rows]


def _trim(c: sqlite3.Connection, now: float, max_entries: int) -> None:
    c.execute("DELETE FROM semantic_cache WHERE expires_at <= ?", (now,))
    c.execute(
        "DELETE FROM semantic_cache WHERE id <= "
        "(SELECT id FROM semantic_cache ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (max_entries,),
    )


# ---- Redis ----------------------------------------------------------------------------------------------

READ_COUNT = 1000  # stream entries per XRANGE / XREAD call


class RedisSemanticLog:
    """Entries and invalidations appended to the stream ``<prefix>semantic:log`` (trimmed by MAXLEN ≈
    ``max_entries``), each tagged with the instance that wrote it. ``read`` blocks in ``XREAD`` on a
    connection of its own, up to ``block_ms``."""

    def __init__(
        self,
        url: str,
        prefix: str = "tollhouse:",
        *,
        max_entries: int = 100_000,
        maxlen: int | None = None,
        block_ms: int = 1000,
    ) -> None:
        self.stream = f"{prefix}semantic:log"
        self.maxlen = maxlen if maxlen is not None else max_entries
        self.block_ms = block_ms
        self.origin = uuid.uuid4().hex.encode()
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(url, socket_timeout=5.0)
        # The reader blocks in XREAD: its own connection, with a timeout longer than the block.
        self._reader = aioredis.Redis.from_url(url, socket_timeout=block_ms / 1000 + 5.0)
        self._last_id = b"0-0"

    async def open(self) -> None:
        await self._redis.ping()

    async def load(self) -> AsyncIterator[list[SemanticChange]]:
        """The whole stream, one page per ``XRANGE`` (this instance's own entries included)."""
        while True:
            page: Any = await self._redis.xrange(self.stream, min=_after(self._last_id), count=READ_COUNT)
            if not page:
                return
            yield self._changes(page, foreign_only=False)

    async def append(self, row: SemanticRow) -> None:
        fields: dict[Any, Any] = {
            b"op": b"add",
            b"o": self.origin,
            b"t": row.tenant,
            b"m": row.model,
            b"c": row.context,
            b"x": row.text,
            b"k": row.entry_key,
            b"e": repr(row.expires_at),
            b"v": _blob(row.vector),
        }
        await self._redis.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)

    async def drop(self, tenant: str | None, model: str | None) -> None:
        fields: dict[Any, Any] = {b"op": b"drop", b"o": self.origin}
        if tenant is not None:
            fields[b"t"] = tenant
        if model is not None:
            fields[b"m"] = model
        await self._redis.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)

    async def read(self, wait: bool) -> list[SemanticChange]:
        got: Any = await self._reader.xread(
            {self.stream: self._last_id}, count=READ_COUNT, block=self.block_ms if wait else None
        )
        out: list[SemanticChange] = []
        for _stream, page in got or ():
            out += self._changes(page, foreign_only=True)
        return out

    def _changes(
        self, page: list[tuple[bytes, dict[bytes, bytes]]], *, foreign_only: bool
    ) -> list[SemanticChange]:
        now = time.time()
        out: list[SemanticChange] = []
        for entry_id, f in page:
            self._last_id = entry_id
            if foreign_only and f.get(b"o") == self.origin:
                continue  # applied locally when it was written
            op = f.get(b"op")
            if op == b"drop":
                t, m = f.get(b"t"), f.get(b"m")
                out.append(SemanticDrop(None if t is None else t.decode(), None if m is None else m.decode()))
            elif op == b"add" and float(f[b"e"]) > now:
                out.append(
                    SemanticRow(
                        f[b"t"].decode(),
                        f[b"m"].decode(),
                        f[b"c"].decode(),
                        f[b"x"].decode(),
                        f[b"k"].decode(),
                        float(f[b"e"]),
                        _vector(f[b"v"]),
                    )
                )
        return out

    async def aclose(self) -> None:
        await self._reader.aclose()
        await self._redis.aclose()


def _after(entry_id: bytes) -> bytes:
    """XRANGE lower bound just past ``entry_id`` (exclusive ranges need Redis ≥ 6.2)."""
    return b"-" if entry_id == b"0-0" else b"(" + entry_id
