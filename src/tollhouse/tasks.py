"""Background tasks owned by long-lived objects: a periodic job that survives its own failures, and the
cancel-and-wait every ``aclose`` needs."""

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
