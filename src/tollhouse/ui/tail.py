"""The live tail: the last requests this process served, with their stage timings, pushed to the
dashboard's open event streams as they finish.

``TailMiddleware`` (outermost but one, around every route) reads the request's context once the response
has ended — no work while the request runs, one ``deque.append`` and one non-blocking put per subscriber
after. The ledger is the durable, every-replica record; the tail is what this process saw, including the
stage timeline the ledger does not keep.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from tollhouse.types import RequestContext

KEEP = 2000  # requests remembered
QUEUE = 500  # events buffered per stream before its oldest are dropped


def summary(ctx: RequestContext, status: int) -> dict[str, Any]:
    """What the dashboard shows of one request: no prompt, no completion, no secret."""
    p = ctx.principal
    usage = ctx.usage
    total = ctx.elapsed()
    return {
        "ts": time.time(),
        "request_id": ctx.request_id,
        "endpoint": ctx.endpoint,
        "ingress": ctx.ingress,
        "key_id": p.key_id,
        "user": p.user,
        "team": p.team,
        "model": ctx.model_requested,
        "model_served": ctx.model_served,
        "deployment": ctx.deployment,
        "route": ctx.route,
        "status": status,
        "error_class": ctx.error_class,
        "stream": ctx.stream,
        "prompt_tokens": usage.prompt_tokens if usage else None,
        "completion_tokens": usage.completion_tokens if usage else None,
        "cost_usd": ctx.cost_usd,
        "cache_status": ctx.cache_status,
        "guardrails": [list(e) for e in ctx.guardrail_events or ()],
        "latency_ms": round(total * 1000, 3),
        "upstream_ms": round(ctx.upstream_seconds * 1000, 3),
        "overhead_ms": round(max(0.0, total - ctx.upstream_seconds) * 1000, 3),
        "ttft_ms": None if ctx.ttft_seconds is None else round(ctx.ttft_seconds * 1000, 3),
        "stages": {k: round(v * 1000, 3) for k, v in ctx.stage_seconds.items()},
        "attempts": ctx.attempts,
        "fallbacks": ctx.fallbacks,
        "failures": list(ctx.failures or ()),
    }


class Tail:
    def __init__(self) -> None:
        self.recent: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self._streams: set[asyncio.Queue[dict[str, Any]]] = set()

    def add(self, item: dict[str, Any]) -> None:
        self.recent.append(item)
        for q in self._streams:
            if q.full():
                q.get_nowait()
            q.put_nowait(item)

    def find(self, request_id: str) -> dict[str, Any] | None:
        for item in reversed(self.recent):
            if item["request_id"] == request_id:
                found: dict[str, Any] = item
                return found
        return None

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE)
        self._streams.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._streams.discard(q)


class TailMiddleware:
    """Feeds ``tail`` with every model request (requests that built a context) once it has ended."""

    def __init__(self, app: ASGIApp, tail: Tail) -> None:
        self.app = app
        self.tail = tail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            ctx = scope.get("state", {}).get("ctx")
            if isinstance(ctx, RequestContext):
                with contextlib.suppress(Exception):  # the tail must never break a request
                    self.tail.add(summary(ctx, ctx.status if ctx.status >= 400 else status))
