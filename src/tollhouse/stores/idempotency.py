"""Idempotency stores: the first result of a POST carrying an ``Idempotency-Key``, kept for a TTL.

``begin`` elects one runner per key; concurrent duplicates ``wait`` for its result instead of calling the
provider again. Only completed 2xx responses are stored, so a failed request can be retried with its key.
Two implementations of one Protocol: in-process (default) and Redis (shared by every gateway process).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import orjson

_POLL_S = 0.02


@dataclass(slots=True)
class StoredResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    fingerprint: str  # hash of the request body: the same key with another body is refused

    def dumps(self) -> bytes:
        head = {"s": self.status, "f": self.fingerprint, "h": [[k.hex(), v.hex()] for k, v in self.headers]}
        return orjson.dumps(head) + b"\n" + self.body

    @classmethod
    def loads(cls, raw: bytes) -> StoredResponse:
        head_raw, _, body = raw.partition(b"\n")
        head = orjson.loads(head_raw)
        headers = [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in head["h"]]
        return cls(int(head["s"]), headers, body, str(head["f"]))


class IdempotencyStore(Protocol):
    async def get(self, key: str) -> StoredResponse | None:
        """The stored result, or None."""
        ...

    async def begin(self, key: str) -> bool:
        """True: the caller runs the request and must call ``finish``. False: another caller is running it."""
        ...

    async def wait(self, key: str, timeout_s: float) -> StoredResponse | None:
        """Wait for the running caller: its stored result, or None (it stored nothing, or time ran out)."""
        ...

    async def finish(self, key: str, resp: StoredResponse | None) -> None:
        """Store ``resp`` (when not None) and release the key for waiters. Called once, from a ``finally``."""
        ...

    async def aclose(self) -> None: ...


class MemoryIdempotencyStore:
    """One process: an LRU of results with expiry, and an event per key in flight."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._results: OrderedDict[str, tuple[float, StoredResponse]] = OrderedDict()
        self._running: dict[str, asyncio.Event] = {}

    async def get(self, key: str) -> StoredResponse | None:
        item = self._results.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            del self._results[key]
            return None
        return item[1]

    async def begin(self, key: str) -> bool:
        if key in self._running:
            return False
        self._running[key] = asyncio.Event()
        return True

    async def wait(self, key: str, timeout_s: float) -> StoredResponse | None:
        event = self._running.get(key)
        if event is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout_s)
        return await self.get(key)

    async def finish(self, key: str, resp: StoredResponse | None) -> None:
        if resp is not None:
            self._results[key] = (time.monotonic() + self._ttl, resp)
            self._results.move_to_end(key)
            while len(self._results) > self._max:
                self._results.popitem(last=False)
        event = self._running.pop(key, None)
        if event is not None:
            event.set()

    async def aclose(self) -> None:
        return None


class RedisIdempotencyStore:
    """Every process: results under ``<prefix>idem:<key>`` for ``ttl_s``; the runner holds
    ``<prefix>idem-lock:<key>`` (expiring after ``lock_s`` in case it dies); duplicates in other processes
    poll for the result."""

    def __init__(self, url: str, prefix: str, *, ttl_s: float, lock_s: float) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(url, socket_timeout=2.0)
        self._prefix = prefix
        self._ttl_ms = int(ttl_s * 1000)
        self._lock_ms = int(lock_s * 1000)

    def _k(self, key: str) -> str:
        return f"{self._prefix}idem:{key}"

    def _lock(self, key: str) -> str:
        return f"{self._prefix}idem-lock:{key}"

    async def get(self, key: str) -> StoredResponse | None:
        raw = await self._redis.get(self._k(key))
        if raw is None:
            return None
        return StoredResponse.loads(raw if isinstance(raw, bytes) else raw.encode())

    async def begin(self, key: str) -> bool:
        return bool(await self._redis.set(self._lock(key), b"1", nx=True, px=self._lock_ms))

    async def wait(self, key: str, timeout_s: float) -> StoredResponse | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = await self.get(key)
            if found is not None or not await self._redis.exists(self._lock(key)):
                return found or await self.get(key)
            await asyncio.sleep(_POLL_S)
        return None

    async def finish(self, key: str, resp: StoredResponse | None) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            if resp is not None:
                pipe.set(self._k(key), resp.dumps(), px=self._ttl_ms)
            pipe.delete(self._lock(key))
            await pipe.execute()

    async def aclose(self) -> None:
        await self._redis.aclose()
