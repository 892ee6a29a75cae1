"""How tool calls are reported: the `tools_used` extension field of an answer, and a stream's progress
events."""

from __future__ import annotations

from typing import Any

from tollhouse.types import RequestContext, ToolUse


def progress_event(use: ToolUse) -> dict[str, Any]:
    return {
        "type": "tool",
        "name": use.name,
        "status": use.status,
        "round": use.round,
        "duration_ms": round(use.duration_s * 1000, 3),
    }


def tools_used_json(ctx: RequestContext) -> list[dict[str, Any]]:
    """The ``tools_used`` extension field of an answer."""
    return [
        {
            "name": u.name,
            "arguments": u.arguments,
            "status": u.status,
            "duration_ms": round(u.duration_s * 1000, 3),
            "result": u.result,
            "round": u.round,
        }
        for u in ctx.tools_used or ()
    ]
