"""The SSE response of every model stream (OpenAI's routes and Anthropic's ``/v1/messages``).

Starlette's ``StreamingResponse`` opens a task group per stream (its disconnect listener) and starts the
body in a new task, one loop iteration before the first byte. This one sends the headers and each chunk
inline, in the request's own task, straight from the gateway's stream (no generator layer of its own). A
client that leaves is noticed as ``unless_disconnected`` notices it (a listener started only once the
stream has lasted ``WATCH_AFTER_S``) or by a send that fails: the stream is then closed (the upstream
request is aborted, the reservation settles, the ledger records 499) and the response ends quietly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Generic, TypeVar

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tollhouse.api.disconnect import Watch
from tollhouse.errors import TollhouseError, UpstreamError
from tollhouse.types import RequestContext

log = logging.getLogger("tollhouse.api")

T = TypeVar("T")

SSE_HEADERS = {
    "cache-control": "no-cache",
    "x-accel-buffering": "no",  # nginx and friends must not buffer the stream
}


class SSEResponse(Response, Generic[T]):
    """``encode(chunk)``: the chunk's events (``b""``: nothing to send); a ``bytes`` chunk is sent as is (a
    tool-progress comment). ``end()``: what follows the last chunk of a stream that ended well (trailer,
    ``[DONE]``), called once the stream is closed. ``failed(exc)``: the error event that ends a stream
    that failed after its headers."""

    media_type = "text/event-stream"

    def __init__(
        self,
        chunks: AsyncIterator[T | bytes],
        encode: Callable[[T], bytes],
        end: Callable[[], bytes],
        failed: Callable[[TollhouseError], bytes],
        ctx: RequestContext | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.chunks = chunks
        self.encode = encode
        self.end = end
        self.failed = failed
        self.ctx = ctx
        self.status_code = 200
        self.background = None
        self.init_headers({**SSE_HEADERS, **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        watch = Watch(receive, self.ctx)
        try:
            last = await self._relay(send, watch)
        finally:
            watch.stop()
        if watch.fired and watch.task.uncancel() > 0:
            raise asyncio.CancelledError  # cancelled by someone else as well (the server, at shutdown)
        if last is not None:
            await send({"type": "http.response.body", "body": last, "more_body": False})

    async def _relay(self, send: Send, watch: Watch) -> bytes | None:
        """Send the stream's chunks; returns the last body to send, None when the client has left."""
        chunks, encode = self.chunks, self.encode
        try:
            try:
                async for chunk in chunks:
                    body = chunk if isinstance(chunk, bytes) else encode(chunk)
                    if body:
                        await send({"type": "http.response.body", "body": body, "more_body": True})
            finally:
                await _close(chunks)  # before ``end()``: closing the stream settles what its trailer reports
        except TollhouseError as exc:
            # Headers are gone: the only honest signal left is an error event, then the end of the stream.
            log.warning("stream failed after first chunk", extra={"error_type": exc.type, "detail": str(exc)})
            return self.failed(exc)
        except OSError:  # a send that failed: the client has left (servers of ASGI spec 2.4 say so)
            self._gone(watch)
            return None
        except asyncio.CancelledError:
            if not watch.fired:
                raise
            return None  # the client left: the stream is closed, nobody is left to answer
        except Exception:
            if watch.fired:  # failed on the way out of a cancellation for the client that left
                return None
            log.exception("stream failed after first chunk")
            return self.failed(UpstreamError("internal error during stream"))
        return self.end()

    def _gone(self, watch: Watch) -> None:
        watch.stop()
        if self.ctx is not None:
            self.ctx.client_gone = True


async def _close(chunks: AsyncIterator[object]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()
