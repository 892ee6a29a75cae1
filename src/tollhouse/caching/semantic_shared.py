"""Semantic index shared by every gateway process through a Redis Stream (ADR 0009): an add or an
invalidation is applied locally and XADDed; each process replays the stream into its own in-process
index at start and then follows it (XREAD BLOCK) in a background task. Trimmed by MAXLEN ≈ max_entries.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import numpy as np
import redis.asyncio as aioredis

from tollhouse.caching.semantic import ANN_MIN_ENTRIES, F32, SemanticHit, SemanticScope
from tollhouse.caching.vectors import MemorySemanticIndex
from tollhouse.tasks import cancel

log = logging.getLogger("tollhouse.cache")

READ_COUNT = 1000  # stream entries per XRANGE / XREAD call
RETRY_S = 1.0


class RedisSemanticIndex:
    """``SemanticIndex`` whose entries every process sees; lookups stay in process (no network)."""

    def __init__(
        self,
        url: str,
        prefix: str = "tollhouse:",
        *,
        threshold: float = 0.95,
        max_entries: int = 100_000,
        checks: bool = True,
        ann_min_entries: int = ANN_MIN_ENTRIES,
        maxlen: int | None = None,
        block_ms: int = 1000,
    ) -> None:
        self.stream = f"{prefix}semantic:log"
        self.maxlen = maxlen if maxlen is not None else max_entries
        self.block_ms = block_ms
        self.origin = uuid.uuid4().hex.encode()
        self.memory = MemorySemanticIndex(
            threshold=threshold, max_entries=max_entries, checks=checks, ann_min_entries=ann_min_entries
        )
        self._redis = aioredis.Redis.from_url(url, socket_timeout=5.0)
        # The follower blocks in XREAD: its own connection, with a timeout longer than the block.
        self._reader = aioredis.Redis.from_url(url, socket_timeout=block_ms / 1000 + 5.0)
        self._last_id = b"0-0"
        self._task: asyncio.Task[None] | None = None
        self.applied = 0  # stream entries from other processes applied here (tests, metrics)

    async def start(self) -> None:
        """Replay the stream into the local index, then follow it. Raises when Redis is unreachable."""
        await self.memory.start()
        while True:
            page: Any = await self._redis.xrange(self.stream, min=_after(self._last_id), count=READ_COUNT)
            if not page:
                break
            await self._apply(page, replay=True)
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def search(self, scope: SemanticScope, vector: F32, text: str) -> SemanticHit | None:
        return await self.memory.search(scope, vector, text)

    async def add(
        self, scope: SemanticScope, vector: F32, text: str, entry_key: str, expires_at: float
    ) -> None:
        await self.memory.add(scope, vector, text, entry_key, expires_at)
        fields: dict[Any, Any] = {
            b"op": b"add",
            b"o": self.origin,
            b"t": scope.tenant,
            b"m": scope.model,
            b"c": scope.context,
            b"x": text,
            b"k": entry_key,
            b"e": repr(expires_at),
            b"v": np.ascontiguousarray(vector, dtype="<f4").reshape(-1).tobytes(),
        }
        await self._redis.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)

    async def invalidate(self, *, tenant: str | None = None, model: str | None = None) -> int:
        dropped = self.memory.drop(tenant=tenant, model=model)
        fields: dict[Any, Any] = {b"op": b"drop", b"o": self.origin}
        if tenant is not None:
            fields[b"t"] = tenant
        if model is not None:
            fields[b"m"] = model
        await self._redis.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
        return dropped

    def entries(self) -> int:
        return self.memory.entries()

    async def _follow(self) -> None:
        while True:
            try:
                got: Any = await self._reader.xread(
                    {self.stream: self._last_id}, count=READ_COUNT, block=self.block_ms
                )
                for _stream, page in got or ():
                    await self._apply(page, replay=False)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "semantic cache: following the Redis stream failed", extra={"error": type(exc).__name__}
                )
                await asyncio.sleep(RETRY_S)

    async def _apply(self, page: list[tuple[bytes, dict[bytes, bytes]]], *, replay: bool) -> None:
        """Apply stream entries in order: runs of adds as one batch, each invalidation where it falls."""
        now = time.time()
        dim = self.memory.vectors.dim
        batch: list[tuple[Any, F32, str, str, float]] = []
        for entry_id, f in page:
            self._last_id = entry_id
            if not replay and f.get(b"o") == self.origin:
                continue  # applied locally when it was written
            if f.get(b"op") == b"drop":
                if batch:
                    await asyncio.to_thread(self.memory.vectors.add_many, batch)
                    batch = []
                t, m = f.get(b"t"), f.get(b"m")
                self.memory.drop(
                    tenant=None if t is None else t.decode(), model=None if m is None else m.decode()
                )
            elif f.get(b"op") == b"add":
                expires_at = float(f[b"e"])
                vec = np.frombuffer(f[b"v"], dtype="<f4")
                if expires_at <= now or vec.shape != (dim,):
                    continue
                scope = SemanticScope(f[b"t"].decode(), f[b"m"].decode(), f[b"c"].decode())
                batch.append((scope, vec.astype(np.float32), f[b"x"].decode(), f[b"k"].decode(), expires_at))
            if not replay:
                self.applied += 1
        if batch:
            await asyncio.to_thread(self.memory.vectors.add_many, batch)

    async def aclose(self) -> None:
        await cancel(self._task)
        self._task = None
        await self._reader.aclose()
        await self._redis.aclose()


def _after(entry_id: bytes) -> bytes:
    """XRANGE lower bound just past ``entry_id`` (exclusive ranges need Redis ≥ 6.2)."""
    return b"-" if entry_id == b"0-0" else b"(" + entry_id
