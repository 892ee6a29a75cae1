"""Background tasks owned by long-lived objects: a periodic job that survives its own failures, a coalescing
flusher that never loses a batch at shutdown, and the cancel-and-wait every ``aclose`` needs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tollhouse.outage import Outage


def every(
    interval_s: float, job: Callable[[], Awaitable[None]], name: str, log: logging.Logger
) -> asyncio.Task[None]:
    """Run ``job`` every ``interval_s`` seconds until cancelled; a failing run is not fatal, and a run of
    failures is logged once (with its cause) and once more when a run succeeds again."""
    outage = Outage(f"background job {name}", log, "retrying every run")

    async def run() -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await job()
            except Exception as exc:
                outage.failed(exc)
                continue
            outage.ok()

    return asyncio.create_task(run(), name=f"tollhouse-{name}")


RECANCEL_S = 0.5  # how long a cancelled task may take before it is cancelled again


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has finished.

    A cancellation can be absorbed below us: redis-py 8 sometimes swallows the ``CancelledError`` that
    lands in a blocking ``XREAD`` and returns normally, and a loop around it then blocks again — awaiting
    the task once would hang shutdown. So the task is cancelled again until it is done."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_S)
    with contextlib.suppress(asyncio.CancelledError):
        await task


DRAIN_GRACE_S = 5.0  # how long ``Flusher.drain`` lets a flush under way finish before cancelling it


class Flusher:
    """Runs ``flush`` once every ``interval_s`` while ``pending()`` says there is work, in a task started by
    ``kick`` (so an idle process runs none). ``drain`` (shutdown) lets a flush under way finish before it
    stops the task — cancelling one midway would lose the batch it had taken — then flushes what is left."""

    def __init__(self, interval_s: float, pending: Callable[[], bool], flush: Callable[[], Awaitable[None]]):
        self.interval_s = interval_s
        self._pending = pending
        self._flush = flush
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self._closing = False

    def kick(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._pending() and not self._closing:
            await asyncio.sleep(self.interval_s)
            self._busy = True
            try:
                await self._flush()
            finally:
                self._busy = False

    async def drain(self) -> None:
        task, self._closing = self._task, True
        try:
            if task is not None and self._busy:
                await asyncio.wait({task}, timeout=DRAIN_GRACE_S)
            await cancel(task)
            await self._flush()
        finally:
            self._closing = False
