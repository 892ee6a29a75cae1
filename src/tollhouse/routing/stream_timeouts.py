"""The timeouts of a stream being relayed, enforced by the gateway whatever the provider: the whole stream
ends by its deployment's ``total_s``, and no wait for the next chunk lasts longer than its idle limit.

One timer per stream, re-armed only when it fires, rather than a timeout per chunk (~4.5 µs a chunk).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TypeVar

from tollhouse.errors import UpstreamTimeout

C = TypeVar("C")
# The event loop's timers have millisecond resolution: a timer may fire this early.
_SLACK_S = 0.002


class StreamTimeouts:
    """``deadline``: ``time.perf_counter()`` by which the stream must end (None: no limit); ``idle_s``:
    longest wait for one chunk (None: no limit); ``total_s``: the limit the deadline came from (for the
    message). ``close`` when the stream ends."""

    __slots__ = ("_handle", "_since", "_task", "_waiting", "deadline", "expired", "idle_s", "total_s")

    def __init__(self, deadline: float | None, idle_s: float | None, total_s: float | None) -> None:
        self.deadline = deadline
        self.idle_s = idle_s
        self.total_s = total_s
        self.expired: str | None = None  # why the stream was cut, once it was
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None
        self._waiting = False
        self._since = 0.0

    async def next(self, upstream: AsyncIterator[C]) -> C:
        """The next chunk of ``upstream``, or ``UpstreamTimeout`` when a limit passes first (the wait is
        cancelled, which closes the upstream call)."""
        task = self._task = asyncio.current_task()
        self._since = now = time.perf_counter()
        if self._handle is None:
            self._arm(now)
        self._waiting = True
        try:
            chunk = await upstream.__anext__()
        except BaseException:
            if self.expired is None or (task is not None and task.uncancel() > 0):
                raise
            raise UpstreamTimeout(self.expired) from None
        finally:
            self._waiting = False
        if self.expired is not None and task is not None:  # our cancellation was absorbed below us
            task.uncancel()
            raise UpstreamTimeout(self.expired)
        return chunk

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _due(self) -> float | None:
        idle_end = None if self.idle_s is None else self._since + self.idle_s
        if self.deadline is None:
            return idle_end
        return self.deadline if idle_end is None else min(self.deadline, idle_end)

    def _arm(self, now: float) -> None:
        due = self._due()
        if due is not None:
            self._handle = asyncio.get_running_loop().call_later(max(0.0, due - now), self._fire)

    def _fire(self) -> None:
        self._handle = None
        if not self._waiting or self.expired is not None:
            return  # between waits (the client is being written to): the next wait re-arms
        now = time.perf_counter() + _SLACK_S
        if self.deadline is not None and now >= self.deadline:
            self.expired = f"the stream did not finish within its total_s of {self.total_s:g} s"
        elif self.idle_s is not None and now - self._since >= self.idle_s:
            self.expired = f"the upstream stream was idle for more than {self.idle_s:g} s"
        else:
            self._arm(now)  # chunks came meanwhile: wait for what is left of the current gap
            return
        if self._task is not None:
            self._task.cancel(self.expired)
