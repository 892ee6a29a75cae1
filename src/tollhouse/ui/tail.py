"""The live tail: the last requests this process served, with their stage timings, pushed to the
dashboard's open event streams as they finish.

``Tail.record`` is called by ``GatewayMiddleware`` once a model request has ended (no wrapper of its own
on the request path: ADR 0027) — one ``deque.append`` and one non-blocking put per subscriber. The ledger is
the durable, every-replica record; the tail is what this process saw, including the stage timeline the
ledger does not keep.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from tollhouse.types import RequestContext

KEEP = 2000  # requests remembered
QUEUE = 500  # events buffered per stream before its oldest are dropped


def summary(ctx: RequestContext, status: int) -> dict[str, Any]:
    """What the dashboard keeps of one request: no prompt, no completion, no secret. Raw values only (this
    runs once per request); ``view`` turns them into what pages show."""
    p = ctx.principal
    usage = ctx.usage
    return {
        "ts": time.time(),
        "total_s": time.perf_counter() - ctx.started,
        "request_id": ctx.request_id,
        "endpoint": ctx.endpoint,
        "key_id": p.key_id,
        "user": p.user,
        "team": p.team,
        "model": ctx.model_requested,
        "model_served": ctx.model_served,
        "route": ctx.route,
        "status": status,
        "error_class": ctx.error_class,
        "usage": usage,
        "cost_usd": ctx.cost_usd,
        "cache_status": ctx.cache_status,
        "guardrails": ctx.guardrail_events,
        "upstream_s": ctx.upstream_seconds,
        "ttft_s": ctx.ttft_seconds,
        "stages": ctx.stage_seconds,
        "failures": ctx.failures,
    }


def view(item: dict[str, Any]) -> dict[str, Any]:
    """One kept request as the pages and the event stream show it (milliseconds, token counts)."""
    usage = item["usage"]
    total, upstream = item["total_s"], item["upstream_s"]
    out = {k: v for k, v in item.items() if k not in ("usage", "total_s", "upstream_s", "ttft_s", "stages")}
    out.update(
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        guardrails=[list(e) for e in item["guardrails"] or ()],
        failures=list(item["failures"] or ()),
        latency_ms=round(total * 1000, 3),
        upstream_ms=round(upstream * 1000, 3),
        overhead_ms=round(max(0.0, total - upstream) * 1000, 3),
        ttft_ms=None if item["ttft_s"] is None else round(item["ttft_s"] * 1000, 3),
        stages={k: round(v * 1000, 3) for k, v in item["stages"].items()},
    )
    return out


class Tail:
    def __init__(self) -> None:
        self.recent: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self._streams: set[asyncio.Queue[dict[str, Any]]] = set()

    def add(self, item: dict[str, Any]) -> None:
        self.recent.append(item)
        if self._streams:
            shown = view(item)
            for q in self._streams:
                if q.full():
                    q.get_nowait()
                q.put_nowait(shown)

    def record(self, ctx: RequestContext, status: int) -> None:
        """A finished model request and its outcome."""
        self.add(summary(ctx, status))

    def find(self, request_id: str) -> dict[str, Any] | None:
        for item in reversed(self.recent):
            if item["request_id"] == request_id:
                return view(item)
        return None

    def latest(self, n: int) -> list[dict[str, Any]]:
        """The ``n`` newest, newest first."""
        return [view(self.recent[-i]) for i in range(1, min(n, len(self.recent)) + 1)]

    def overheads_since(self, ts: float) -> list[float]:
        return [max(0.0, r["total_s"] - r["upstream_s"]) * 1000 for r in self.recent if r["ts"] >= ts]

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE)
        self._streams.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._streams.discard(q)
