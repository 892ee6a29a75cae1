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


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _plain(record.getMessage()),
        }
        rid = request_id_var.get()
        if rid:
            out["request_id"] = rid
        tid = trace_id_var.get()
        if tid:
            out["trace_id"] = tid
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


def configure(settings: LoggingSettings) -> None:
    """Install one stderr handler on the root logger; uvicorn's own loggers go through it too."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
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
