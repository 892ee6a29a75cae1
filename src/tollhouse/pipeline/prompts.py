"""Prompts seam: render a request's reference to a stored prompt, and count each finished request that used
one (``prompts/``). ``NoPrompts`` refuses a prompt reference with a 400 and counts nothing.

Both run on the request path without I/O: the registry keeps every prompt in memory and counts in memory,
adding the counts to the shared store in the background.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol

from tollhouse.errors import InvalidRequest
from tollhouse.types import PromptRef, RenderedPrompt, RequestContext


class PromptSource(Protocol):
    def render(self, ctx: RequestContext, ref: PromptRef, user: str | None) -> RenderedPrompt:
        """The version ``ref`` names or its experiment assigns (by ``ref.unit``, else the key or ``user``),
        rendered; sets ``ctx.prompt_template`` / ``ctx.prompt_version``. Raises ``NotFound`` (unknown
        prompt, version or label) or ``InvalidRequest`` (variables, rendering)."""
        ...

    def observe(self, ctx: RequestContext) -> None:
        """Count a finished request that used a stored prompt. Never raises, never blocks."""
        ...

    def detach(self, run: Coroutine[Any, Any, None]) -> None:
        """Run a shadow request in the background (owned, bounded and cancelled at shutdown by the source;
        closed unrun when too many are already running)."""
        ...

    def shadow_answer(self, parent: RequestContext, ctx: RequestContext, answer: object) -> None:
        """Keep a shadow run's answer beside the live request's id, for comparison."""
        ...


class NoPrompts:
    def render(self, ctx: RequestContext, ref: PromptRef, user: str | None) -> RenderedPrompt:
        raise InvalidRequest(
            "Stored prompts are not enabled on this gateway (prompts.enabled).", param="prompt"
        )

    def observe(self, ctx: RequestContext) -> None:
        return None

    def detach(self, run: Coroutine[Any, Any, None]) -> None:
        run.close()

    def shadow_answer(self, parent: RequestContext, ctx: RequestContext, answer: object) -> None:
        return None
