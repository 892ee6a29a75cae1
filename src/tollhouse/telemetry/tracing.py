"""OpenTelemetry traces: a SERVER span per request, a child span per pipeline stage, a CLIENT span per
provider call (with a first-token event), and W3C trace context sent to the upstream.

Off by default, and then nothing here is imported: the OpenTelemetry SDK is loaded only by ``Tracing``.
Stage spans are made after the fact from the ``perf_counter`` readings the gateway already takes
(``RequestContext.mark_stage``), so stages need no context managers. Context reaches the upstream through
``tollhouse.context.upstream_headers_var`` (read by the OpenAI-compatible provider); with tracing off the
caller's own ``traceparent`` is passed through unchanged.
"""

from __future__ import annotations

import os
import random
import time
from contextvars import Token
from typing import TYPE_CHECKING, Any

from tollhouse.context import upstream_headers_var
from tollhouse.settings import ModelConfig, TracingSettings
from tollhouse.telemetry import genai
from tollhouse.types import RequestContext
from tollhouse.version import __version__

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

_TRACE_HEADERS = (b"traceparent", b"tracestate")


def incoming_trace_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str] | None:
    """The caller's W3C trace context headers, if any (a traceparent is required for either to count)."""
    found: dict[str, str] | None = None
    for k, v in headers:
        if k in _TRACE_HEADERS:
            if found is None:
                found = {}
            found[k.decode()] = v.decode("latin-1")
    return found if found and "traceparent" in found else None


def trace_id_of(traceparent: str) -> str | None:
    """The trace id of a well-formed ``traceparent`` (``00-<32 hex>-<16 hex>-<2 hex>``), else None."""
    parts = traceparent.strip().split("-")
    if len(parts) < 4 or len(parts[1]) != 32 or parts[1] == "0" * 32:
        return None
    try:
        int(parts[1], 16)
    except ValueError:
        return None
    return parts[1].lower()


class Tracing:
    """The tracer provider and its exporter. Build once per app; ``shutdown`` flushes."""

    def __init__(
        self,
        settings: TracingSettings,
        models: list[ModelConfig],
        exporter: SpanExporter | None = None,
    ) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation import set_span_in_context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        resource = Resource.create({"service.name": settings.service_name, "service.version": __version__})
        self.resource = resource
        self.provider = TracerProvider(
            resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio))
        )
        # Our processors, also fed directly with the finished stage spans (see RequestTrace.finish).
        self.processors: list[SpanProcessor] = []
        if exporter is not None:  # tests: in-memory, exported as each span ends
            self.add_processor(SimpleSpanProcessor(exporter))
        elif settings.exporter == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            self.add_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif settings.exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            headers = _parse_headers(os.environ.get(settings.otlp_headers_env or "", ""))
            self.add_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint, headers=headers))
            )
        self.tracer = self.provider.get_tracer("tollhouse", __version__)
        self.scope = InstrumentationScope("tollhouse", __version__)
        self.propagator = TraceContextTextMapPropagator()
        self.models = {m.name: m for m in models}
        self.server_kind = SpanKind.SERVER
        self.client_kind = SpanKind.CLIENT
        self.in_context = set_span_in_context

    def add_processor(self, processor: SpanProcessor) -> None:
        self.processors.append(processor)
        self.provider.add_span_processor(processor)

    def start_request(self, method: str, path: str, incoming: dict[str, str] | None) -> RequestTrace:
        """Open the request span as a child of the caller's trace context when it sent one."""
        parent = self.propagator.extract(incoming) if incoming else None
        wall, perf = time.time_ns(), time.perf_counter()
        span = self.tracer.start_span(
            method,
            context=parent,
            kind=self.server_kind,
            start_time=wall,
            attributes={"http.request.method": method, "url.path": path},
        )
        return RequestTrace(self, span, wall, perf)

    def shutdown(self) -> None:
        self.provider.shutdown()


class RequestTrace:
    """One request's spans (``types.StageTracer``). Lives on ``RequestContext.tracer`` while tracing is on."""

    __slots__ = ("_done", "_perf0", "_stages", "_tracing", "_wall0", "context", "span", "trace_id")

    def __init__(self, tracing: Tracing, span: Span, wall0: int, perf0: float) -> None:
        self._tracing = tracing
        self.span = span
        self._wall0 = wall0
        self._perf0 = perf0
        self.context: Context = tracing.in_context(span)
        self.trace_id = f"{span.get_span_context().trace_id:032x}"
        self._done: list[ProviderCall] = []
        # (name, start, end) per stage; None when this trace is not sampled (nothing to record).
        self._stages: list[tuple[str, float, float]] | None = [] if span.is_recording() else None

    def ns(self, t: float) -> int:
        """A ``perf_counter`` reading as epoch nanoseconds."""
        return self._wall0 + int((t - self._perf0) * 1e9)

    def stage(self, name: str, start: float, end: float) -> None:
        if self._stages is not None:
            self._stages.append((name, start, end))

    def _emit_stages(self) -> None:
        """Stage spans are complete when recorded, so they skip the live-span machinery (sampler, locks,
        attribute checks: ~10x the cost) and go to the processors as finished spans, children of the
        request span, in its trace and sampling decision."""
        stages = self._stages
        if not stages:
            return
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext

        t = self._tracing
        parent = self.span.get_span_context()
        trace_id, flags = parent.trace_id, parent.trace_flags
        for name, start, end in stages:
            ctx = SpanContext(trace_id, random.getrandbits(64), is_remote=False, trace_flags=flags)
            span = ReadableSpan(
                name,
                context=ctx,
                parent=parent,
                resource=t.resource,
                instrumentation_scope=t.scope,
                start_time=self.ns(start),
                end_time=self.ns(end),
            )
            for p in t.processors:
                p.on_end(span)

    def provider_call(self, ctx: RequestContext, deployment: str) -> ProviderCall:
        t = self._tracing
        model = t.models.get(deployment)
        name = f"{genai.operation(ctx)} {model.upstream_model if model else deployment}"
        attributes = genai.provider_attributes(ctx, model)
        span = t.tracer.start_span(name, context=self.context, kind=t.client_kind, attributes=attributes)
        headers: dict[str, str] = {}
        t.propagator.inject(headers, context=t.in_context(span))
        return ProviderCall(self, span, upstream_headers_var.set(headers), ctx.stream)

    def finish(self, ctx: RequestContext | None, status: int) -> None:
        """End the request span (and the successful provider calls, now that usage is known)."""
        span = self.span
        if ctx is not None:
            span.update_name(genai.span_name(ctx))
            span.set_attributes(genai.request_attributes(ctx, status))
            usage = genai.usage_attributes(ctx)
            for call in self._done:
                call.span.set_attributes(usage)
                call.span.end(end_time=call.end_ns or None)
        else:
            span.set_attribute("http.response.status_code", status)
        if status >= 500:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR))
        self._emit_stages()
        span.end()


class ProviderCall:
    """One provider call's CLIENT span (``types.ProviderSpan``)."""

    __slots__ = ("_stream", "_token", "_trace", "end_ns", "span")

    def __init__(
        self, trace: RequestTrace, span: Span, token: Token[dict[str, str] | None], stream: bool
    ) -> None:
        self._trace = trace
        self.span = span
        self._token: Token[dict[str, str] | None] | None = token
        self._stream = stream
        self.end_ns = 0  # 0: ends with the request (a stream's call lasts until its last chunk)

    def first_token(self) -> None:
        self.span.add_event("gen_ai.first_token")

    def detach(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                upstream_headers_var.reset(token)
            except ValueError:  # reset from another context (a stream finished elsewhere)
                upstream_headers_var.set(None)

    def end(self, error: BaseException | None) -> None:
        self.detach()
        if error is None:
            # Usage is only known when the request finishes: the span is ended then, at this time
            # (a stream's successful call, at the end of the stream).
            self.end_ns = 0 if self._stream else time.time_ns()
            self._trace._done.append(self)
            return
        from opentelemetry.trace import Status, StatusCode

        self.span.set_attribute("error.type", type(error).__name__)
        self.span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        self.span.end()


def _parse_headers(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in raw.split(","):
        k, sep, v = part.partition("=")
        if sep and k.strip():
            out[k.strip()] = v.strip()
    return out


def attach(trace: RequestTrace) -> Any:
    """Make the request span current (for code that asks OpenTelemetry directly, tasks included)."""
    from opentelemetry import context

    return context.attach(trace.context)


def detach(token: Any) -> None:
    from opentelemetry import context

    context.detach(token)
