"""``CacheStore``: where exact-cache answers live (bytes under a key, with a TTL and the tenant and model they
belong to, so an administrator can drop them by either). One Protocol, three backends: an in-process LRU
(default), SQLite (persistent, one host) and Redis (shared by every replica)."""

from __future__ import annotations

import sqlite3
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from tollhouse.stores.sql import SqliteDB, tenant_model_where

if TYPE_CHECKING:
    import redis.asyncio as aioredis


class CacheStore(Protocol):
    """Exact-cache answers by key; never read from two places for one lookup (the stage asks once)."""

    async def open(self) -> None:
        """Connect / create tables. Raises when the store cannot be reached."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The stored value, or None when absent or expired. Raises on a store error (callers treat
        that as a miss)."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float, tenant: str, model: str) -> None:
        """Store (replacing any previous value) for ``ttl_s`` seconds."""
        ...

    async def invalidate(self, *, tenant: str | None = None, model: str | None = None) -> int:
        """Drop the entries of this tenant and/or model (both None: everything); returns how many."""
        ...

    async def entries(self) -> int:
        """How many live entries there are."""
        ...

    async def aclose(self) -> None: ...


# ---- memory ---------------------------------------------------------------------------------------------

ENTRY_OVERHEAD = 200  # bytes charged per entry beyond key and value (dict slot, tuple, strings)


class LRUStore:
    """In process (the embedded default): an LRU bounded by bytes, per process."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        # key → (value, expires_at, tenant, model)
        self._items: OrderedDict[str, tuple[bytes, float, str, str]] = OrderedDict()

    async def open(self) -> None:
        return None

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= time.time():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return item[0]

    async def set(self, key: str, value: bytes, ttl_s: float, tenant: str, model: str) -> None:
        size = self._size(key, value)
        if size > self.max_bytes:
            return
        if key in self._items:
            self._drop(key)
        self._items[key] = (value, time.time() + ttl_s, tenant, model)
        self.bytes += size
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._items)))

    async def invalidate(self, *, tenant: str | None = None, model: str | None = None) -> int:
        doomed = [
            k
            for k, (_, _, t, m) in self._items.items()
            if (tenant is None or t == tenant) and (model is None or m == model)
        ]
        for k in doomed:
            self._drop(k)
        return len(doomed)

    async def entries(self) -> int:
        now = time.time()
        for k in [k for k, item in self._items.items() if item[1] <= now]:
            self._drop(k)
        return len(self._items)

    async def aclose(self) -> None:
        self._items.clear()
        self.bytes = 0

    def _drop(self, key: str) -> None:
        value = self._items.pop(key)[0]
        self.bytes -= self._size(key, value)

    @staticmethod
    def _size(key: str, value: bytes) -> int:
        return len(key) + len(value) + ENTRY_OVERHEAD


# ---- SQLite ---------------------------------------------------------------------------------------------

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS response_cache (
  key TEXT PRIMARY KEY, tenant TEXT NOT NULL, model TEXT NOT NULL, value BLOB NOT NULL,
  expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS response_cache_expires ON response_cache (expires_at);
CREATE INDEX IF NOT EXISTS response_cache_tenant_model ON response_cache (tenant, model);
"""
PURGE_EVERY = 500  # writes between purges of expired rows


class SqliteCacheStore:
    """Persistent in SQLite (WAL), for the embedded mode: answers survive a restart and are shared by the
    workers of one host. Calls run in a worker thread; expired rows are purged in batches."""

    def __init__(self, path: str) -> None:
        self.db = SqliteDB(path, "exact cache (SQLite)")
        self._writes = 0

    async def open(self) -> None:
        await self.db.open(_SQLITE_SCHEMA)

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


# ---- Redis ----------------------------------------------------------------------------------------------

_SCAN_BATCH = 500


def _part(s: str) -> str:
    """A key segment with no ':' and no glob metacharacters, so patterns over it are exact."""
    out = []
    for ch in s:
        if ch.isalnum() or ch in "-_.@":
            out.append(ch)
        else:
            out.append(f"%{ord(ch):02x}")
    return "".join(out)


class RedisCacheStore:
    """Shared in Redis (scale-out): one ``GET`` per lookup, ``SET … PX`` per store, so every replica serves
    what any replica stored. The tenant and the model are part of an index key's name (escaped), so
    invalidation by either is a ``SCAN`` over a pattern."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.base = f"{prefix}cache:"
        self.redis: aioredis.Redis | None = None

    async def open(self) -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
        await self.redis.ping()

    def _r(self) -> aioredis.Redis:
        if self.redis is None:
            raise RuntimeError("the Redis cache store is not open")
        return self.redis

    def _index(self, key: str, tenant: str, model: str) -> str:
        return f"{self.base}i:{_part(tenant)}:{_part(model)}:{key}"

    async def get(self, key: str) -> bytes | None:
        value = await self._r().get(self.base + "v:" + key)
        if value is None:
            return None
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, ttl_s: float, tenant: str, model: str) -> None:
        ms = max(1, int(ttl_s * 1000))
        pipe = self._r().pipeline(transaction=False)
        pipe.set(self.base + "v:" + key, value, px=ms)
        pipe.set(self._index(key, tenant, model), b"", px=ms)  # the (tenant, model) index entry
        await pipe.execute()

    async def invalidate(self, *, tenant: str | None = None, model: str | None = None) -> int:
        t = "*" if tenant is None else _part(tenant)
        m = "*" if model is None else _part(model)
        r = self._r()
        removed = 0
        async for batch in _batches(r, f"{self.base}i:{t}:{m}:*"):
            values = [self.base + "v:" + n.decode().rsplit(":", 1)[1] for n in batch]
            removed += await r.unlink(*values)
            await r.unlink(*batch)
        if tenant is None and model is None:  # values stored without an index entry, if any
            async for batch in _batches(r, f"{self.base}v:*"):
                removed += await r.unlink(*batch)
        return removed

    async def entries(self) -> int:
        n = 0
        async for batch in _batches(self._r(), f"{self.base}v:*"):
            n += len(batch)
        return n

    async def aclose(self) -> None:
        r, self.redis = self.redis, None
        if r is not None:
            await r.aclose()


async def _batches(r: aioredis.Redis, pattern: str) -> AsyncIterator[list[bytes]]:
    batch: list[bytes] = []
    async for name in r.scan_iter(match=pattern, count=_SCAN_BATCH):
        batch.append(name)
        if len(batch) >= _SCAN_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
