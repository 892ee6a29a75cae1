"""Stream helpers for routing: when a stream has committed to its deployment, and closing streams safely."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any


def has_content(chunk: Any) -> bool:
    """True for the first chunk a client must see as the answer (text, tool call, finish, usage), False for
    a bare role announcement: a stream may still fail over before its first content chunk."""
    if chunk.usage is not None:
        return True
    for ch in chunk.choices:
        if ch.finish_reason is not None:
            return True
        delta = getattr(ch, "delta", None)
        if delta is None:
            if ch.text:
                return True
        elif delta.content or delta.tool_calls or delta.refusal:
            return True
    return False


async def aclose_all(*iterators: AsyncIterator[Any] | None) -> None:
    for it in iterators:
        close = getattr(it, "aclose", None)
        if close is not None:
            # Closing a broken upstream must not mask the original outcome.
            with contextlib.suppress(Exception):
                await close()
