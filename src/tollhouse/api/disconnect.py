"""A client that disconnects before its answer is ready cancels the work done for it: the upstream request
is aborted, local generation stops, the reservation settles and the ledger records one 499.

Streams that already answer are watched by their response (``api.streaming``, with the same ``Watch``);
this covers the rest: whole answers and streams still waiting for their first token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive

from tollhouse.types import RequestContext

T = TypeVar("T")

# The client is watched only once the work has taken this long: most answers (cache hits, refusals, fast
# models) are done sooner and never pay for the watch (a task each, ~6 µs; the timer costs ~1 µs). A
# client that left earlier is noticed at this point.
WATCH_AFTER_S = 0.05
CLIENT_GONE = "the client disconnected"


async def unless_disconnected(request: Request, ctx: RequestContext, work: Awaitable[T]) -> T | None:
    """Await ``work``; if the client disconnects meanwhile, cancel it and return None: nobody is left to
    answer, the caller returns ``gone()``. Any other cancellation goes on as usual. The request body must
    have been read already."""
    watch = Watch(request.receive, ctx)
    result: T | None = None
    try:
        result = await work
    except (Exception, asyncio.CancelledError):
        if not watch.fired:
            raise
        # Cancelled for the client that left (or failed on the way out): nobody is left to tell.
    finally:
        watch.stop()
    if watch.fired and watch.task.uncancel() > 0:
        # Our cancellation was delivered (and absorbed above, or by the work itself) and is undone; the
        # request was cancelled by someone else as well.
        raise asyncio.CancelledError
    # Work that finished all the same is returned (a stream must still be relayed to be settled).
    return result


def gone() -> Response:
    """The response to a client that has left: never delivered, it sets the status the access line and
    the metrics report (499, as the ledger has it)."""
    return Response(status_code=499)


class Watch:
    """Cancels the current task when the client disconnects, watching only once ``WATCH_AFTER_S`` has
    passed; ``stop()`` when the work is done. Used for whole answers and for streams (api.streaming)."""

    __slots__ = ("_ctx", "_listener", "_receive", "_timer", "fired", "stopped", "task")

    def __init__(self, receive: Receive, ctx: RequestContext | None) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self._receive = receive
        self._ctx = ctx
        self.fired = False
        self.stopped = False
        self._listener: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            WATCH_AFTER_S, self._start
        )

    def _start(self) -> None:
        self._timer = None
        if not self.stopped:
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        try:
            while (await self._receive())["type"] != "http.disconnect":
                pass  # the body was read before the work started: nothing else is expected
        except Exception:  # a receive that fails tells nothing about the client: stop watching
            return
        if not self.stopped:
            self.fired = True
            if self._ctx is not None:
                self._ctx.client_gone = True
            self.task.cancel(CLIENT_GONE)

    def stop(self) -> None:
        self.stopped = True
        if self._timer is not None:
            self._timer.cancel()
        if self._listener is not None:
            self._listener.cancel()
