"""Structured logging: JSON lines (or text) with the request id on every line (``tollhouse.context``).

Secrets and prompt/completion text are never logged: the access line carries counts, not content.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson

from tollhouse.context import request_id_var, trace_id_var
from tollhouse.settings import LoggingSettings
from tollhouse.telemetry.linewriter import LineWriter

# uvicorn adds ``color_message`` (its message with ANSI colour codes) to its records: never a field of ours.
_STD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}
# Terminal escape sequences (colours, cursor moves) that a library may put in a message.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _plain(text: str) -> str:
    return _ANSI.sub("", text) if "\x1b" in text else text


_last_second = -1
_second_text = ""


def _timestamp(now: float) -> str:
    """The ``ts`` of a JSON line at ``now`` (its date and time part made once a second)."""
    global _last_second, _second_text
    sec = int(now)
    if sec != _last_second:
        _second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        _last_second = sec
    return f"{_second_text}.{int((now - sec) * 1000):03d}Z"


def _envelope(created: float, level: str, logger: str, msg: str) -> dict[str, Any]:
    """The fields every JSON line starts with, in order, with the request and trace ids under way."""
    out: dict[str, Any] = {"ts": _timestamp(created), "level": level, "logger": logger, "msg": msg}
    rid = request_id_var.get()
    if rid:
        out["request_id"] = rid
    tid = trace_id_var.get()
    if tid:
        out["trace_id"] = tid
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = _envelope(record.created, record.levelname.lower(), record.name, _plain(record.getMessage()))
        for k, v in record.__dict__.items():
            if k not in _STD_ATTRS and not k.startswith("_"):
                out[k] = _plain(v) if isinstance(v, str) else v
        if record.exc_info:
            out["exc"] = _plain(self.formatException(record.exc_info))
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}" for k, v in record.__dict__.items() if k not in _STD_ATTRS and not k.startswith("_")
        )
        rid = request_id_var.get()
        head = f"{self.formatTime(record)} {record.levelname:<7} {record.name}"
        line = f"{head} [{rid}] {record.getMessage()}" if rid else f"{head} {record.getMessage()}"
        line = f"{line} {extras}" if extras else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class BufferedHandler(logging.Handler):
    """Formats a record and queues its line on a ``LineWriter`` (warnings and errors are written at once)."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        self.writer.write(line, now=record.levelno >= logging.WARNING)

    def flush(self) -> None:
        self.writer.flush()


_ROOT = logging.getLogger()
_ACCESS = logging.getLogger("tollhouse.access")
_PARENT = logging.getLogger("tollhouse")
_json: BufferedHandler | None = None  # the JSON handler ``configure`` installed, if it did


def access_writer() -> LineWriter | None:
    """Where the access line can go directly, built by ``access_line`` rather than through a ``LogRecord``:
    the writer of the JSON handler ``configure`` installed, while it is the only one listening and the
    line is enabled (level, filters). Else None: the line goes through ``logging`` (text format, a
    handler added by a test or an embedding application)."""
    h = _json
    if (
        h is None
        or len(_ROOT.handlers) != 1
        or _ROOT.handlers[0] is not h
        or _ACCESS.handlers
        or _PARENT.handlers
        or _ACCESS.filters
        or _ROOT.filters
        or h.filters
        or _ACCESS.disabled
        or not _ACCESS.propagate
        or not _PARENT.propagate
        or h.level > logging.INFO
        or not _ACCESS.isEnabledFor(logging.INFO)
    ):
        return None
    return h.writer


def access_line(fields: dict[str, Any]) -> str:
    """The line ``JsonFormatter`` makes of ``tollhouse.access``'s ``info("request", extra=fields)``, key for
    key, without a ``LogRecord``; ends in a newline."""
    out = _envelope(time.time(), "info", "tollhouse.access", "request")
    for k, v in fields.items():
        out[k] = _plain(v) if isinstance(v, str) else v
    return orjson.dumps(out, default=str).decode() + "\n"


def flush() -> None:
    """Write every buffered line now (the app's lifespan calls it when the server stops)."""
    for h in _ROOT.handlers:
        h.flush()


def configure(settings: LoggingSettings) -> None:
    """Install one buffered stderr handler on the root logger; uvicorn's own loggers go through it too."""
    global _json
    flush()
    for old in _ROOT.handlers:
        if isinstance(old, BufferedHandler):
            old.writer.close()
    handler = BufferedHandler(LineWriter(sys.stderr))
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    _json = handler if settings.format == "json" else None
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # Our own access line replaces uvicorn's.
    logging.getLogger("uvicorn.access").disabled = True
    # No formatter of ours prints the caller, thread or process: skip collecting them on every record
    # (the logging HOWTO's "Optimization"; ~1.5 µs of the access line's ~10).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
