"""Shared exact-cache store in Redis (scale-out): one ``GET`` per lookup, ``SET … PX`` per store, so every
replica serves what any replica stored. The tenant and the model are part of the key name (escaped), so
invalidation by either is a ``SCAN`` over a pattern."""

from __future__ import annotations

from collections.abc import AsyncIterator

import redis.asyncio as aioredis

SCAN_BATCH = 500


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
    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.base = f"{prefix}cache:"
        self.redis: aioredis.Redis | None = None

    async def open(self) -> None:
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
    async for name in r.scan_iter(match=pattern, count=SCAN_BATCH):
        batch.append(name)
        if len(batch) >= SCAN_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
