"""Buffered log-line output: lines are gathered and written once per event-loop iteration (or as soon as the
buffer passes a threshold), not one write(2) per line under a handler lock.

Outside a running loop (start-up, shutdown, other threads' loops aside) and for warnings and errors a line
is written at once. What is buffered is written at the end of the loop iteration that produced it, by
``flush()`` (the app's lifespan calls it on stop) and at interpreter exit. A write that fails drops its
lines: logging must never break a request.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
from typing import TextIO

# Past this many characters buffered, a line is written at once (a burst in one loop iteration).
FLUSH_CHARS = 64 * 1024


class LineWriter:
    def __init__(self, stream: TextIO, flush_chars: int = FLUSH_CHARS) -> None:
        self.stream = stream
        self.flush_chars = flush_chars
        self._lines: list[str] = []
        self._size = 0
        self._scheduled: asyncio.AbstractEventLoop | None = None  # the loop a flush is queued on
        self._lock = threading.Lock()  # lines may come from other threads (executors, libraries)
        atexit.register(self.flush)

    def write(self, line: str, *, now: bool = False) -> None:
        """Queue one line (ending in a newline)."""
        with self._lock:
            self._lines.append(line)
            self._size += len(line)
            full = self._size >= self.flush_chars
        if now or full:
            self.flush()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._scheduled is not loop:  # none queued, or queued on a loop that has since gone
            self._scheduled = loop
            loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._scheduled = None
        self.flush()

    def flush(self) -> None:
        with self._lock:
            if not self._lines:
                return
            text = "".join(self._lines)
            self._lines.clear()
            self._size = 0
            with contextlib.suppress(Exception):
                self.stream.write(text)
                self.stream.flush()

    def close(self) -> None:
        self.flush()
        atexit.unregister(self.flush)
