"""Cache stage: serve a stored answer before routing, store a fresh one after. ``NoCache`` never hits."""

from __future__ import annotations

from typing import Protocol

from tollhouse.types import ChatRequest, ChatResponse, RequestContext


class ResponseCache(Protocol):
    async def lookup(self, ctx: RequestContext, req: ChatRequest) -> ChatResponse | None:
        """A stored response for this request in the caller's tenant scope, or None. Sets ctx.cache_status."""
        ...

    async def store(self, ctx: RequestContext, req: ChatRequest, resp: ChatResponse) -> None:
        """Remember a complete, successful response (never errors or truncated answers)."""
        ...


class NoCache:
    async def lookup(self, ctx: RequestContext, req: ChatRequest) -> ChatResponse | None:
        return None

    async def store(self, ctx: RequestContext, req: ChatRequest, resp: ChatResponse) -> None:
        return None
