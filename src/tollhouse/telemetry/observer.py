"""``Telemetry``: metrics, tracing and evaluation records behind two calls the middleware makes per request.

``begin(scope)`` before the app runs (in-flight count, request span or the caller's trace context, trace id
for log lines) and ``end(...)`` once the response is finished, from the final ``RequestContext``: metrics,
evaluation record, span attributes. The gateway itself only records stage timings on the context.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, MutableMapping
from contextvars import Token
from typing import TYPE_CHECKING, Any

from tollhouse.context import trace_id_var, upstream_headers_var
from tollhouse.pricing import PriceBook
from tollhouse.settings import Settings
from tollhouse.stores.build import eval_store
from tollhouse.stores.evaluation import Feedback
from tollhouse.tasks import cancel
from tollhouse.telemetry.evaluation import EvalLogger
from tollhouse.telemetry.metrics import Metrics, NoMetrics
from tollhouse.telemetry.tracing import (
    RequestTrace,
    Tracing,
    attach,
    detach,
    incoming_trace_headers,
    trace_id_of,
)
from tollhouse.types import RequestContext

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter


log = logging.getLogger("tollhouse.telemetry")


class Begun:
    """What ``begin`` opened for one request, closed by ``end``."""

    __slots__ = ("headers_token", "otel_token", "trace", "trace_id_token")

    def __init__(
        self,
        trace: RequestTrace | None,
        trace_id_token: Token[str | None],
        headers_token: Token[dict[str, str] | None] | None = None,
        otel_token: Any = None,
    ) -> None:
        self.trace = trace
        self.trace_id_token = trace_id_token
        self.headers_token = headers_token
        self.otel_token = otel_token


class Telemetry:
    """Built in ``create_app`` (cheap: no I/O); the ``Runtime`` starts and closes it in the lifespan."""

    def __init__(self, settings: Settings, *, span_exporter: SpanExporter | None = None) -> None:
        t = settings.telemetry
        models = settings.all_models()
        self.settings = settings
        self.server_timing = t.server_timing
        self.metrics: Metrics | NoMetrics = Metrics(t.metrics, models) if t.metrics.enabled else NoMetrics()
        self.tracing: Tracing | None = None
        if t.tracing.exporter != "off" or span_exporter is not None:
            self.tracing = Tracing(t.tracing, models, exporter=span_exporter)
        self.evaluation: EvalLogger | None = None
        if t.evaluation.enabled:
            self.evaluation = EvalLogger(
                t.evaluation, eval_store(t.evaluation), PriceBook(models), on_drop=self._eval_dropped
            )
        self._sampler: asyncio.Task[None] | None = None
        self._untraced = t.metrics.path  # scrapes every few seconds would drown the traces

    # ---- per request ----------------------------------------------------------------------------------

    def begin(self, scope: MutableMapping[str, Any]) -> Begun | None:
        self.metrics.in_flight += 1
        incoming = incoming_trace_headers(scope["headers"])
        if self.tracing is not None and scope["path"] != self._untraced:
            trace = self.tracing.start_request(scope["method"], scope["path"], incoming)
            scope["state"]["trace"] = trace
            return Begun(trace, trace_id_var.set(trace.trace_id), otel_token=attach(trace))
        if incoming is None:
            return None
        # Tracing off: still join the caller's trace in our logs and pass its context on unchanged.
        return Begun(
            None, trace_id_var.set(trace_id_of(incoming["traceparent"])), upstream_headers_var.set(incoming)
        )

    def end(self, begun: Begun | None, ctx: RequestContext | None, status: int, elapsed: float) -> None:
        """Called once per HTTP request after the response ended (or failed). Never raises."""
        self.metrics.in_flight -= 1
        try:
            self.metrics.observe(ctx, status, elapsed)
            if ctx is not None and self.evaluation is not None:
                self.evaluation.record(ctx, status, begun.trace.trace_id if begun and begun.trace else None)
            if begun is not None and begun.trace is not None:
                begun.trace.finish(ctx, status)
        except Exception:
            log.exception("telemetry failed for a request")
        finally:
            if begun is not None:
                if begun.otel_token is not None:
                    detach(begun.otel_token)
                if begun.headers_token is not None:
                    upstream_headers_var.reset(begun.headers_token)
                trace_id_var.reset(begun.trace_id_token)

    # ---- lifespan ---------------------------------------------------------------------------------------

    async def start(
        self,
        *,
        deployments: Iterable[tuple[str, object]],
        circuits: Callable[[], dict[str, dict[str, Any]]],
        store_errors: dict[str, Callable[[], int]],
        unknown_cost: Callable[[], int],
    ) -> None:
        """Watch the live state the gauges show — each deployment's provider (name, provider), the circuit
        states (``Router.circuits``), the stages' store-error and unknown-cost counters — and start the
        evaluation writer (and the multiprocess sampler)."""
        self.metrics.clear_gauge_sources()
        self.metrics.watch_deployments(deployments)
        self.metrics.watch_circuits(circuits)
        self.metrics.watch_counts(store_errors, unknown_cost)
        if self.evaluation is not None:
            await self.evaluation.start()
        if self.metrics.multiprocess:
            self._sampler = asyncio.create_task(self._sample(), name="tollhouse-metrics-sampler")

    async def _sample(self) -> None:
        interval = self.settings.telemetry.metrics.sample_interval_s
        while True:
            self.metrics.refresh()
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        await cancel(self._sampler)
        self._sampler = None
        if self.evaluation is not None:
            await self.evaluation.aclose()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)  # flushes the exporter (network I/O)
        self.metrics.close()

    def feedback(self, request_id: str, score: float, comment: str | None, key_id: str | None) -> bool:
        """Queue user feedback on an earlier response; False when evaluation is off or its queue is full."""
        if self.evaluation is None:
            return False
        return self.evaluation.feedback(Feedback(request_id, score, comment, key_id, time.time()))

    def _eval_dropped(self, n: int) -> None:
        if isinstance(self.metrics, Metrics):
            self.metrics.eval_dropped.inc(n)


def server_timing(ctx: RequestContext) -> bytes:
    """``server-timing``: each stage's milliseconds, time waiting on providers, TTFT (streams), the
    gateway's own time and the total so far (headers of a stream go out at its first chunk)."""
    parts = [f"{name};dur={sec * 1000:.3f}" for name, sec in ctx.stage_seconds.items()]
    total = ctx.elapsed()
    parts.append(f"upstream;dur={ctx.upstream_seconds * 1000:.3f}")
    if ctx.ttft_seconds is not None:
        parts.append(f"ttft;dur={ctx.ttft_seconds * 1000:.3f}")
    parts.append(f"overhead;dur={max(0.0, total - ctx.upstream_seconds) * 1000:.3f}")
    parts.append(f"total;dur={total * 1000:.3f}")
    return ", ".join(parts).encode()
