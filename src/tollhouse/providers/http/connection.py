"""One keep-alive HTTP/1.1 connection to an upstream: an asyncio protocol fed to httptools' response parser.

One exchange at a time. The awaiting side parks on a single future per wait; one timer per wait enforces the
read timeout (re-armed lazily from the time of the last bytes, not on every read) and the total deadline.
A whole answer is buffered; a stream's body is handed out as it arrives, with reading paused while more
than ``_HIGH_WATER`` bytes wait for the consumer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import httptools

from tollhouse.providers.http.errors import (
    ConnectError,
    Disconnected,
    PayloadError,
    ProtocolError,
    ReadTimeout,
)

_HIGH_WATER = 256 * 1024  # stream bytes buffered before reading pauses


class Pool(Protocol):
    """What a connection and an answer need of their client (``HttpClient``)."""

    loop: asyncio.AbstractEventLoop

    def release(self, conn: Connection) -> None: ...

    def drop(self, conn: Connection) -> None: ...

    def drain(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """A pooled connection; ``HttpClient`` drives it through ``send``, ``wait`` and ``take``."""

    def __init__(self, client: Pool, max_body: int) -> None:
        self._client = client
        self._loop = client.loop
        self._max_body = max_body
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.pooled = True  # counted in the client's pool until dropped
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._active = False
        self._after: Callable[[Connection], None] | None = None  # run when a drained answer completes
        self._reset(False, 0.0, 0.0)

    def _reset(self, stream: bool, deadline: float, read_s: float) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.exc: BaseException | None = None
        self._stream = stream
        self._body: list[bytes] = []
        self._size = 0
        self._progress = False
        self._deadline = deadline
        self._read_s = read_s
        self._last = self._loop.time()

    # ---- driven by the client ------------------------------------------------------------------------

    def send(self, data: bytes, stream: bool, deadline: float, read_s: float) -> None:
        if self.closed or self.transport is None:
            # Closed by the server between the connect and now: nothing would ever answer.
            raise Disconnected("upstream closed the connection before the request was sent")
        self._reset(stream, deadline, read_s)
        self._active = True
        self.transport.write(data)

    async def wait(self) -> None:
        """Until the parser made progress (stream) or the answer is whole; raise the connection's error."""
        if not (self._progress or self.complete or self.exc is not None):
            fut = self._loop.create_future()
            self._waiter = fut
            self._arm()
            try:
                await fut
            finally:
                self._waiter = None
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
        self._progress = False
        if self.exc is not None:
            raise self.exc

    def take(self) -> bytes:
        """The body bytes received so far (and not yet taken); resumes reading if it was paused."""
        body = self._body
        if not body:
            return b""
        data = body[0] if len(body) == 1 else b"".join(body)
        self._body = []
        self._size = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def finished(self) -> None:
        """The exchange is over (the answer was read whole)."""
        self._active = False

    def drain_then(self, after: Callable[[Connection], None]) -> None:
        """Call ``after`` once the rest of the answer arrives (a stream whose last event was read)."""
        self._after = after
        self._stream = False  # no more wake-ups: buffer nothing, wait only for the end

    def close(self) -> None:
        self.closed = True
        self._active = False
        if self.transport is not None:
            self.transport.close()

    # ---- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self._active:
            self.close()  # bytes nobody asked for: the connection is out of step
            self._client.drop(self)
            return
        self._last = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("upstream asked to switch protocols"))
        except httptools.HttpParserError as exc:
            detail = str(exc) or type(exc).__name__
            if self.headers_done:
                self._fail(PayloadError(f"malformed response body ({detail})"))
            else:
                self._fail(ProtocolError(f"malformed response ({detail})"))
        if self._after is not None and self.complete:
            after, self._after = self._after, None
            self._active = False
            after(self)

    def eof_received(self) -> bool | None:
        return None  # close the transport: a half-closed upstream answers nothing more

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._active and not self.complete and self.exc is None:
            if self.headers_done and "content-length" not in self.headers and not self._chunked():
                self.complete = True  # a body delimited by the end of the connection
                self.keep_alive = False
            elif not self.headers_done:
                self.exc = (
                    ConnectError(f"connection reset ({exc})")
                    if exc is not None
                    else Disconnected("upstream closed the connection before answering")
                )
            else:
                self.exc = PayloadError("upstream closed the connection before the body was complete")
        self._wake()
        self._client.drop(self)

    def pause_writing(self) -> None:  # pragma: no cover - request bodies are small
        pass

    def resume_writing(self) -> None:  # pragma: no cover
        pass

    # ---- httptools callbacks -------------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        old = self.headers.get(key)
        self.headers[key] = text if old is None else f"{old}, {text}"

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if self.status < 200:  # 1xx: an interim answer; the real one follows
            self.headers = {}
            return
        self.headers_done = True
        if self._stream:
            self._progress = True
            self._wake()

    def on_body(self, body: bytes) -> None:
        if self.exc is not None or self._after is not None:
            return  # failing, or draining the end of a stream nobody reads any more
        self._size += len(body)
        self._body.append(body)
        if self._stream:
            self._progress = True
            if self._size > _HIGH_WATER and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()
            self._wake()
        elif self._size > self._max_body:
            self._fail(PayloadError(f"response larger than {self._max_body} bytes"))

    def on_message_complete(self) -> None:
        if not self.headers_done:
            return  # the end of a 1xx interim answer
        self.complete = True
        self.keep_alive = self._parser.should_keep_alive()
        self._progress = True
        self._wake()

    # ---- internals -----------------------------------------------------------------------------------

    def _chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    def _fail(self, exc: BaseException) -> None:
        if self.exc is None:
            self.exc = exc
        self.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _arm(self) -> None:
        when = self._last + self._read_s
        self._timer = self._loop.call_at(min(when, self._deadline), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        now = self._loop.time()
        if now >= self._deadline:
            waiter.set_exception(ReadTimeout("the request's total time ran out"))
        elif now >= self._last + self._read_s:
            waiter.set_exception(ReadTimeout(f"no bytes from upstream for {self._read_s:g} s"))
        else:
            self._arm()  # bytes came since the timer was set: wait the rest of the read timeout
