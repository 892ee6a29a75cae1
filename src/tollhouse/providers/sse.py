"""Server-sent events, decoded incrementally: bytes in as they arrive, ``(event, data)`` pairs out."""

from __future__ import annotations

from tollhouse.errors import UpstreamUnavailable

_MAX_SSE_BUFFER = 16 * 1024 * 1024  # a single SSE line larger than this is a broken upstream, not a reply


class SSEDecoder:
    """Incremental SSE decoder: bytes in, ``(event, data)`` pairs out. Lines may be split across TCP reads
    and end in LF or CRLF; comments and fields other than event/data are ignored; data lines join with LF."""

    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._data: list[bytes] = []
        self._event = b""

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        whole = chunk.endswith(b"\n\n") and b"\r" not in chunk
        if whole and not self._buf and not self._data and not self._event:
            return self._whole(chunk)
        self._buf += chunk
        end = self._buf.rfind(b"\n")
        if end < 0:
            if len(self._buf) > _MAX_SSE_BUFFER:
                raise UpstreamUnavailable("upstream sent an oversized server-sent event")
            return []
        complete = bytes(self._buf[:end])
        del self._buf[: end + 1]
        out: list[tuple[bytes, bytes]] = []
        for line in complete.split(b"\n"):
            self._line(line, out)
        return out

    def _whole(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        """``chunk`` holds whole events only (what upstreams send per write): a one-line ``data: …`` event
        is taken as is, anything else goes through the line parser."""
        out: list[tuple[bytes, bytes]] = []
        for block in chunk[:-2].split(b"\n\n"):
            if block.startswith(b"data: ") and b"\n" not in block:
                out.append((b"", block[6:]))
                continue
            for line in block.split(b"\n"):
                self._line(line, out)
            self._line(b"", out)
        return out

    def flush(self) -> list[tuple[bytes, bytes]]:
        """At end of body: treat leftovers as complete (servers that skip the last blank line)."""
        out: list[tuple[bytes, bytes]] = []
        if self._buf:
            self._line(bytes(self._buf), out)
            self._buf.clear()
        self._line(b"", out)
        return out

    def _line(self, line: bytes, out: list[tuple[bytes, bytes]]) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            if self._data:
                out.append((self._event, b"\n".join(self._data)))
            self._data = []
            self._event = b""
            return
        if line.startswith(b":"):
            return
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value
