"""The client of one upstream origin: a bounded keep-alive pool and the two calls the providers make.

``request`` sends one request and returns the whole answer; ``open`` returns once the answer's head is in
and hands out its body as it arrives (SSE). Timeouts keep aiohttp's ``ClientTimeout`` meaning as the
providers used it: ``connect`` bounds the wait for a pooled or new connection, ``read`` the gap between
bytes from the server (from the request's sending on), ``total`` the whole exchange, body included.
A connection goes back to the pool only when its answer was read whole and the server did not ask to
close; an idle one is closed after ``keepalive_s``; one the server closed is never handed out.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Mapping
from contextlib import suppress
from typing import NamedTuple
from urllib.parse import urlsplit

from tollhouse.providers.http.connection import Connection
from tollhouse.providers.http.errors import ConnectError, ConnectTimeout, HttpClientError
from tollhouse.providers.http.response import Decoder, Response, StreamResponse

_MAX_BODY = 256 * 1024 * 1024  # a whole answer (or a decoded stream) larger than this is refused
_ACCEPT = "Accept: */*\r\nAccept-Encoding: gzip, deflate\r\n"


class Timeouts(NamedTuple):
    connect: float
    read: float
    total: float


class HttpClient:
    """Requests to one origin (``base_url``'s scheme, host and port). Build inside a running event loop."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        max_connections: int,
        timeouts: Timeouts,
        keepalive_s: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        max_body: int = _MAX_BODY,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if tls else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if tls else None
        host = f"[{self._host}]" if ":" in self._host else self._host
        if parts.port is not None and parts.port != (443 if tls else 80):
            host = f"{host}:{parts.port}"
        self.prefix = parts.path.rstrip("/")  # the base URL's path, e.g. "/v1"
        self._fixed = f"Host: {host}\r\n{_ACCEPT}" + "".join(
            f"{_checked(k)}: {_checked(v)}\r\n" for k, v in headers.items()
        )
        self._limit = max_connections
        self._timeouts = timeouts
        self._keepalive = keepalive_s
        self._max_body = max_body
        self._idle: list[Connection] = []
        self._count = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    def target(self, method: str, path: str, headers: Mapping[str, str] | None = None) -> bytes:
        """The fixed head of a request to ``prefix + path``: rendered once, sent with every call."""
        extra = "".join(f"{_checked(k)}: {_checked(v)}\r\n" for k, v in (headers or {}).items())
        return f"{method} {_checked(self.prefix + path)} HTTP/1.1\r\n{self._fixed}{extra}".encode("latin-1")

    async def request(
        self,
        head: bytes,
        body: bytes | None = None,
        extra: Mapping[str, str] | None = None,
        *,
        total: float = 0,
    ) -> Response:
        """Send a request (``head`` from ``target``) and return the whole answer."""
        deadline = self.loop.time() + (total or self._timeouts.total)
        conn = await self._acquire(deadline)
        try:
            conn.send(_encode(head, body, extra), False, deadline, self._timeouts.read)
            while not conn.complete:
                await conn.wait()
            data = conn.take()
            encoding = Decoder.wanted(conn.headers)
            if encoding is not None:
                decoder = Decoder(encoding, self._max_body)
                data = decoder.feed(data) + decoder.flush()
            response = Response(conn.status, conn.headers, data)
        except BaseException:
            conn.close()
            self.drop(conn)
            raise
        conn.finished()
        self.release(conn)
        return response

    async def open(
        self, head: bytes, body: bytes | None = None, extra: Mapping[str, str] | None = None
    ) -> StreamResponse:
        """Send a request and return once the answer's status and headers are in."""
        deadline = self.loop.time() + self._timeouts.total
        conn = await self._acquire(deadline)
        try:
            conn.send(_encode(head, body, extra), True, deadline, self._timeouts.read)
            while not conn.headers_done:
                await conn.wait()
        except BaseException:
            conn.close()
            self.drop(conn)
            raise
        return StreamResponse(self, conn, self._max_body)

    async def aclose(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
            self.drop(conn)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectError("the client is closed"))

    # ---- the pool -------------------------------------------------------------------------------------

    def release(self, conn: Connection) -> None:
        """An exchange ended cleanly: keep the connection for the next one, or close it."""
        if self._closed or conn.closed or not conn.keep_alive:
            conn.close()
            self.drop(conn)
            return
        conn.idle_since = self.loop.time()
        self._idle.append(conn)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(self._keepalive, self._sweep)
        self._wake_one()

    def drop(self, conn: Connection) -> None:
        """The connection is closed (or closing): it no longer counts toward the pool's bound."""
        if not conn.pooled:
            return
        conn.pooled = False
        self._count -= 1
        if conn in self._idle:
            self._idle.remove(conn)
        self._wake_one()

    def drain(self, conn: Connection) -> None:
        """A stream's consumer is done before the answer's end arrived: pool it when the end comes, close
        it if the end does not come within the read timeout."""
        timer = self.loop.call_later(self._timeouts.read, self._abandon, conn)

        def ended(c: Connection) -> None:
            timer.cancel()  # else it would fire on whatever exchange the pooled connection serves next
            self.release(c)

        conn.drain_then(ended)

    def _abandon(self, conn: Connection) -> None:
        if not conn.complete and not conn.closed:
            conn.close()
            self.drop(conn)

    async def _acquire(self, deadline: float) -> Connection:
        if self._closed:
            raise ConnectError("the client is closed")
        idle = self._idle
        while True:
            while idle:
                conn = idle.pop()
                if conn.closed or conn.transport is None or conn.transport.is_closing():
                    self.drop(conn)
                elif self.loop.time() - conn.idle_since >= self._keepalive:
                    conn.close()
                    self.drop(conn)
                else:
                    return conn
            if self._count < self._limit:
                self._count += 1
                try:
                    return await self._connect(deadline)
                except BaseException:
                    self._count -= 1
                    self._wake_one()
                    raise
            await self._wait_for_slot(deadline)

    async def _wait_for_slot(self, deadline: float) -> None:
        waiter = self.loop.create_future()
        self._waiters.append(waiter)
        timeout = min(self._timeouts.connect, deadline - self.loop.time())
        try:
            await asyncio.wait_for(waiter, max(timeout, 0.0))
        except TimeoutError:
            raise ConnectTimeout(
                f"no free connection within {self._timeouts.connect:g} s ({self._limit} in use)"
            ) from None
        finally:
            if not waiter.done():
                waiter.cancel()
            with suppress(ValueError):
                self._waiters.remove(waiter)

    async def _connect(self, deadline: float) -> Connection:
        timeout = max(min(self._timeouts.connect, deadline - self.loop.time()), 0.0)
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: Connection(self, self._max_body),
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                ),
                timeout,
            )
        except TimeoutError:
            raise ConnectTimeout(f"no connection to {self._host}:{self._port} within {timeout:g} s") from None
        except OSError as exc:  # refused, unreachable, DNS (socket.gaierror), TLS (ssl.SSLError)
            raise ConnectError(f"cannot connect to {self._host}:{self._port}: {exc}") from exc
        if self._closed:
            conn.close()
            raise ConnectError("the client is closed")
        return conn

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _sweep(self) -> None:
        """Close connections idle longer than the keep-alive timeout; come back while any stay idle."""
        self._sweeper = None
        now = self.loop.time()
        for conn in [c for c in self._idle if now - c.idle_since >= self._keepalive]:
            conn.close()
            self.drop(conn)
        if self._idle:
            oldest = min(c.idle_since for c in self._idle)
            self._sweeper = self.loop.call_at(oldest + self._keepalive, self._sweep)


def _encode(head: bytes, body: bytes | None, extra: Mapping[str, str] | None) -> bytes:
    if extra:
        head += "".join(f"{_checked(k)}: {_checked(v)}\r\n" for k, v in extra.items()).encode("latin-1")
    if body is None:
        return head + b"\r\n"
    return b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)


def _checked(text: str) -> str:
    if "\r" in text or "\n" in text:
        raise HttpClientError(f"line break in an HTTP header or path: {text[:40]!r}")
    return text
