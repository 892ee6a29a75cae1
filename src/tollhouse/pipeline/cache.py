"""Cache stage: serve a stored answer before routing, store a fresh one after. ``NoCache`` never hits.

The implementation is ``caching.stage.ResponseCacheStage`` (exact and semantic); this is its seam.
"""

from __future__ import annotations

from typing import Any, Protocol

from tollhouse.types import ChatRequest, ChatResponse, RequestContext


class ResponseCache(Protocol):
    async def lookup(self, ctx: RequestContext, req: ChatRequest) -> ChatResponse | None:
        """A stored response for this request in the caller's tenant scope, or None. Sets
        ``ctx.cache_status`` (and ``cache_similarity`` / ``cache_saved_usd`` on a hit). Never raises for a
        store error (that is a miss)."""
        ...

    async def store(self, ctx: RequestContext, req: ChatRequest, resp: ChatResponse) -> None:
        """Remember a complete, successful response (never errors, blocked or truncated answers), in the
        background; only what ``lookup`` planned for this request."""
        ...

    async def invalidate(self, *, tenant: str | None = None, model: str | None = None) -> int:
        """Drop entries of a tenant scope and/or model (both None: all); returns how many."""
        ...

    async def snapshot(self) -> dict[str, Any]:
        """Counters and sizes for ``GET /v1/cache/stats``."""
        ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class NoCache:
    async def lookup(self, ctx: RequestContext, req: ChatRequest) -> ChatResponse | None:
        return None

    async def store(self, ctx: RequestContext, req: ChatRequest, resp: ChatResponse) -> None:
        return None

    async def invalidate(self, *, tenant: str | None = None, model: str | None = None) -> int:
        return 0

    async def snapshot(self) -> dict[str, Any]:
        return {
            "mode": "off",
            "entries": 0,
            "semantic_entries": 0,
            "hits": 0,
            "semantic_hits": 0,
            "misses": 0,
            "hit_rate": 0.0,
            "saved_usd": 0.0,
        }

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
