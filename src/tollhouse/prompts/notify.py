"""The rollback webhook: a JSON POST in the background, best effort (a failure is logged, never raised)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

log = logging.getLogger("tollhouse.prompts")


class Webhook:
    def __init__(self, url: str | None, timeout_s: float = 5.0) -> None:
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, event: dict[str, Any]) -> None:
        if self.url is None:
            return
        task = asyncio.create_task(self._post(self.url, event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, event: dict[str, Any]) -> None:
        try:
            if self._session is None:
                self._session = aiohttp.ClientSession(timeout=self._timeout)
            async with self._session.post(url, json=event) as resp:
                if resp.status >= 300:
                    log.warning("rollback webhook answered %d", resp.status)
        except Exception as exc:
            log.warning("rollback webhook failed: %s: %s", type(exc).__name__, exc)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
        if self._session is not None:
            await self._session.close()
