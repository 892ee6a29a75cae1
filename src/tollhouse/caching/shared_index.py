"""The semantic index of the ``sqlite`` and ``redis`` backends: searches run in this process
(``vectors.MemorySemanticIndex``, no I/O on a lookup); entries and invalidations are written through to a
``stores.semantic.SemanticLog``, replayed from it at start and followed in the background, so what another
process adds is found here too (ADR 0009)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable, Sequence

from tollhouse.caching.semantic import F32, SemanticHit, SemanticScope
from tollhouse.caching.vectors import MemorySemanticIndex
from tollhouse.outage import Outage
from tollhouse.stores.semantic import SemanticChange, SemanticDrop, SemanticLog, SemanticRow
from tollhouse.tasks import cancel

_log = logging.getLogger("tollhouse.cache")

RETRY_S = 1.0  # pause after a failed read of the log


class SharedSemanticIndex:
    """``SemanticIndex`` over a ``MemorySemanticIndex`` kept in step with a log. ``follow=False`` leaves
    the log unread after start (``sync`` reads it on demand)."""

    def __init__(self, memory: MemorySemanticIndex, log: SemanticLog, *, follow: bool = True) -> None:
        self.memory = memory
        self.log = log
        self.follow = follow
        self.applied = 0  # changes made by other processes applied here (tests, metrics)
        self._task: asyncio.Task[None] | None = None
        self.outage = Outage(
            "semantic cache log", _log, "this process's semantic index misses other processes' entries"
        )

    async def start(self) -> None:
        """Open the log, replay it into the local index, then follow it. Raises when it cannot be reached."""
        await self.memory.start()
        await self.log.open()
        async for page in self.log.load():
            await self._apply(page)
        if self.follow:
            self._task = asyncio.get_running_loop().create_task(self._follow(), name="tollhouse-semantic-log")

    async def search(self, scope: SemanticScope, vector: F32, text: str) -> SemanticHit | None:
        return await self.memory.search(scope, vector, text)

    async def add(
        self, scope: SemanticScope, vector: F32, text: str, entry_key: str, expires_at: float
    ) -> None:
        await self.memory.add(scope, vector, text, entry_key, expires_at)
        row = SemanticRow(scope.tenant, scope.model, scope.context, text, entry_key, expires_at, vector)
        await self.log.append(row)

    async def invalidate(self, *, tenant: str | None = None, model: str | None = None) -> int:
        dropped = self.memory.drop(tenant=tenant, model=model)
        await self.log.drop(tenant, model)
        return dropped

    def entries(self) -> int:
        return self.memory.entries()

    async def sync(self) -> int:
        """Apply what other processes changed since the last read, without waiting; returns how many
        changes there were. For an index that does not follow the log (``follow=False``)."""
        changes = await self.log.read(wait=False)
        await self._apply(changes, foreign=True)
        return len(changes)

    async def _follow(self) -> None:
        while True:
            try:
                changes = await self.log.read(wait=True)
                if changes:
                    await self._apply(changes, foreign=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.outage.failed(exc)
                await asyncio.sleep(RETRY_S)
                continue
            self.outage.ok()

    async def _apply(self, changes: Sequence[SemanticChange], *, foreign: bool = False) -> None:
        """In order: runs of entries as one batch (in a thread), each invalidation where it falls."""
        now = time.time()
        dim = self.memory.vectors.dim
        batch: list[tuple[Hashable, F32, str, str, float]] = []
        for c in changes:
            if isinstance(c, SemanticDrop):
                if batch:
                    await asyncio.to_thread(self.memory.vectors.add_many, batch)
                    batch = []
                self.memory.drop(tenant=c.tenant, model=c.model)
            elif c.expires_at <= now or c.vector.shape != (dim,):
                continue  # expired meanwhile, or written by an encoder of another size: unusable here
            else:
                scope = SemanticScope(c.tenant, c.model, c.context)
                batch.append((scope, c.vector, c.text, c.entry_key, c.expires_at))
            if foreign:
                self.applied += 1
        if batch:
            await asyncio.to_thread(self.memory.vectors.add_many, batch)

    async def aclose(self) -> None:
        await cancel(self._task)
        self._task = None
        await self.log.aclose()
