"""Date and time built-ins: the current time in a time zone, and a time converted between zones (IANA
names through ``zoneinfo``: the system's tz database, else the ``tzdata`` package)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tollhouse.tools.base import Tool, ToolFailure

_TZ = {"type": "string", "description": "IANA time zone, e.g. Europe/Paris or UTC.", "maxLength": 64}


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolFailure("invalid_arguments", f"unknown time zone '{name}' (use an IANA name)") from None


def _describe(t: dt.datetime) -> str:
    return f"{t.isoformat(timespec='seconds')} ({t.strftime('%A')}, {t.tzname()})"


def current_time(now: Callable[[], dt.datetime] | None = None) -> Tool:
    clock = now or (lambda: dt.datetime.now(dt.UTC))

    async def run(args: dict[str, Any]) -> str:
        return _describe(clock().astimezone(zone(args.get("timezone", "UTC"))))

    return Tool(
        "current_time",
        "The current date and time in a time zone.",
        {"type": "object", "properties": {"timezone": _TZ}, "additionalProperties": False},
        run,
        timeout_s=2.0,
        concurrency=16,
    )


async def _convert(args: dict[str, Any]) -> str:
    try:
        t = dt.datetime.fromisoformat(args["time"])
    except ValueError:
        raise ToolFailure("invalid_arguments", "time must be ISO 8601, e.g. 2026-03-01T09:30") from None
    src = zone(args["from_timezone"])
    t = t.replace(tzinfo=src) if t.tzinfo is None else t
    return _describe(t.astimezone(zone(args["to_timezone"])))


def convert_time() -> Tool:
    return Tool(
        "convert_time",
        "Convert a local date and time from one time zone to another.",
        {
            "type": "object",
            "properties": {
                "time": {"type": "string", "description": "ISO 8601 local time, e.g. 2026-03-01T09:30"},
                "from_timezone": _TZ,
                "to_timezone": _TZ,
            },
            "required": ["time", "from_timezone", "to_timezone"],
            "additionalProperties": False,
        },
        _convert,
        timeout_s=2.0,
        concurrency=16,
    )
