"""What a request returns: a whole answer, or a stream read as it arrives; gzip / deflate decoding."""

from __future__ import annotations

import zlib

from tollhouse.providers.http.connection import Connection, Pool
from tollhouse.providers.http.errors import PayloadError

_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class Decoder:
    """Incremental gzip / deflate decoding of a body, bounded in size."""

    def __init__(self, encoding: str, limit: int) -> None:
        self._wbits = _DECODERS[encoding]
        self._z = zlib.decompressobj(self._wbits)
        self._limit = limit
        self._size = 0
        self._started = False

    @staticmethod
    def wanted(headers: dict[str, str]) -> str | None:
        encoding = headers.get("content-encoding", "").strip().lower()
        return encoding if encoding in _DECODERS else None

    def feed(self, data: bytes) -> bytes:
        try:
            out = self._z.decompress(data)
        except zlib.error:
            if self._started or self._wbits != zlib.MAX_WBITS:
                raise PayloadError("cannot decode the compressed response body") from None
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # "deflate" sent raw, without the zlib wrapper
            return self.feed(data)
        self._started = True
        self._size += len(out)
        if self._size > self._limit:
            raise PayloadError(f"decoded response larger than {self._limit} bytes")
        return out

    def flush(self) -> bytes:
        try:
            return self._z.flush()
        except zlib.error:
            raise PayloadError("cannot decode the compressed response body") from None


class Response:
    """A whole answer."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body

    @property
    def content_type(self) -> str:
        return _content_type(self.headers)


class StreamResponse:
    """An answer whose body is read as it arrives; ``release`` (read to its end) or ``close`` it."""

    def __init__(self, client: Pool, conn: Connection, max_body: int) -> None:
        self._client = client
        self._conn: Connection | None = conn
        self.status = conn.status
        self.headers = conn.headers
        encoding = Decoder.wanted(conn.headers)
        self._decoder = Decoder(encoding, max_body) if encoding else None
        self._eof = False

    @property
    def content_type(self) -> str:
        return _content_type(self.headers)

    async def read(self) -> bytes:
        """The next bytes of the body, as many as have arrived; ``b""`` at its end."""
        conn = self._conn
        if conn is None or self._eof:
            return b""
        try:
            while True:
                data = conn.take()
                if data:
                    if self._decoder is None:
                        return data
                    data = self._decoder.feed(data)
                    if data:
                        return data
                    continue
                if conn.complete:
                    self._eof = True
                    return self._decoder.flush() if self._decoder is not None else b""
                await conn.wait()
        except BaseException:
            self.close()
            raise

    async def read_upto(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the body (an error answer's)."""
        parts: list[bytes] = []
        size = 0
        while size < limit and (part := await self.read()):
            parts.append(part)
            size += len(part)
        return b"".join(parts)[:limit]

    def release(self) -> None:
        """Done with the answer: its connection goes back to the pool once the answer's end arrived."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.complete:
            conn.finished()
            self._client.release(conn)
        elif conn.closed or conn.exc is not None:
            self._client.drop(conn)
        else:
            conn.take()
            self._client.drain(conn)

    def close(self) -> None:
        """Drop the connection: the upstream sees it close and stops generating."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            self._client.drop(conn)


def _content_type(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()
