"""Background tasks owned by long-lived objects: a periodic job that survives its own failures, and the
cancel-and-wait every ``aclose`` needs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any


def every(
    interval_s: float, job: Callable[[], Awaitable[None]], name: str, log: logging.Logger
) -> asyncio.Task[None]:
    """Run ``job`` every ``interval_s`` seconds until cancelled; a failing run is logged, not fatal."""

    async def run() -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await job()
            except Exception:
                log.warning("%s failed", name, exc_info=True)

    return asyncio.create_task(run(), name=f"tollhouse-{name}")


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has finished."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
