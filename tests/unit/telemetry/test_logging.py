"""JSON log lines carry plain text: no uvicorn ``color_message``, no ANSI escapes."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from tollhouse.settings import LoggingSettings
from tollhouse.telemetry.logging import configure


def test_uvicorn_color_message_and_ansi_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr("sys.stderr", buf)
    configure(LoggingSettings(format="json"))
    try:
        # What uvicorn.server logs at start-up (the record shape uvicorn itself builds).
        logging.getLogger("uvicorn.error").info(
            "Uvicorn running on %s (Press CTRL+C to quit)",
            "http://127.0.0.1:8000",
            extra={"color_message": "Uvicorn running on \x1b[1m%s\x1b[0m (Press CTRL+C to quit)"},
        )
        logging.getLogger("tollhouse.test").warning(
            "\x1b[31mred\x1b[0m text", extra={"note": "\x1b[1mb\x1b[0m"}
        )
    finally:
        logging.getLogger().handlers.clear()
    lines = [orjson.loads(x) for x in buf.getvalue().splitlines()]
    assert lines[0]["msg"] == "Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)"
    assert "color_message" not in lines[0]
    assert lines[1]["msg"] == "red text"
    assert lines[1]["note"] == "b"
    assert "\x1b" not in buf.getvalue()
