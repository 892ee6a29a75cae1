"""Spans with an in-memory exporter: one SERVER span per request, a child per stage, a CLIENT span per
provider attempt with GenAI attributes; incoming traceparent honoured; tracing off creates nothing."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from tests.conftest import mock_settings

from tollhouse.app import create_app
from tollhouse.telemetry import genai
from tollhouse.telemetry.logging import JsonFormatter
from tollhouse.telemetry.observer import Telemetry
from tollhouse.telemetry.tracing import incoming_trace_headers, trace_id_of
from tollhouse.types import RequestContext, Retrieved, Usage

CHAT = "/v1/chat/completions"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
MSGS = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def traced() -> Iterator[tuple[TestClient, InMemorySpanExporter]]:
    settings = mock_settings(
        fixed={"reply": "one two three four", "chunk_ms": 1}, broken={"fail_status": 503}
    )
    exporter = InMemorySpanExporter()
    app = create_app(settings, telemetry=Telemetry(settings, span_exporter=exporter))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, exporter


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def test_request_span_with_stage_children_and_provider_call(
    traced: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    r = client.post(CHAT, json={"model": "mock", "messages": MSGS, "max_tokens": 5})
    assert r.status_code == 200
    spans = exporter.get_finished_spans()
    (root,) = [s for s in spans if s.kind == SpanKind.SERVER]
    assert root.name == "chat mock"
    assert root.parent is None
    attrs = dict(root.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "mock"
    assert attrs["gen_ai.usage.input_tokens"] == r.json()["usage"]["prompt_tokens"]
    assert attrs["gen_ai.usage.output_tokens"] == r.json()["usage"]["completion_tokens"]
    assert attrs["http.response.status_code"] == 200
    assert attrs["tollhouse.request_id"] == r.headers["x-request-id"]
    children = [s for s in spans if s is not root]
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in children)
    assert all(s.context.trace_id == root.context.trace_id for s in children)
    names = {s.name for s in children}
    assert {"auth", "route", "limits", "guard_input", "guard_output", "ledger"} <= names
    assert "cache_lookup" not in names  # the cache is off in this configuration
    (call,) = [s for s in children if s.kind == SpanKind.CLIENT]
    cattrs = dict(call.attributes or {})
    assert cattrs["gen_ai.provider.name"] == "tollhouse.mock"
    assert cattrs["gen_ai.system"] == "tollhouse.mock"
    assert cattrs["gen_ai.usage.output_tokens"] == attrs["gen_ai.usage.output_tokens"]
    # Stage spans sit inside the request span.
    assert all(root.start_time <= s.start_time <= s.end_time <= root.end_time for s in children)  # type: ignore[operator]


def test_incoming_traceparent_is_the_parent(traced: tuple[TestClient, InMemorySpanExporter]) -> None:
    client, exporter = traced
    client.post(CHAT, json={"model": "mock", "messages": MSGS}, headers={"traceparent": PARENT})
    (root,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert f"{root.context.trace_id:032x}" == TRACE_ID
    assert root.parent is not None and f"{root.parent.span_id:016x}" == "b7ad6b7169203331"


def test_stream_provider_span_has_first_token_event(traced: tuple[TestClient, InMemorySpanExporter]) -> None:
    client, exporter = traced
    with client.stream("POST", CHAT, json={"model": "fixed", "stream": True, "messages": MSGS}) as r:
        b"".join(r.iter_bytes())
    spans = exporter.get_finished_spans()
    (call,) = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert [e.name for e in call.events] == ["gen_ai.first_token"]
    (root,) = [s for s in spans if s.kind == SpanKind.SERVER]
    assert dict(root.attributes or {})["tollhouse.stream"] is True
    assert dict(call.attributes or {})["gen_ai.usage.output_tokens"] == 4
    assert call.end_time is not None and call.end_time <= root.end_time  # type: ignore[operator]


def test_each_failed_attempt_is_an_error_span(traced: tuple[TestClient, InMemorySpanExporter]) -> None:
    client, exporter = traced
    r = client.post(CHAT, json={"model": "broken", "messages": MSGS})
    assert r.status_code >= 500
    spans = exporter.get_finished_spans()
    calls = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert calls and all(not s.status.is_ok for s in calls)
    assert all(dict(s.attributes or {})["error.type"].startswith("Upstream") for s in calls)  # type: ignore[union-attr]
    (root,) = [s for s in spans if s.kind == SpanKind.SERVER]
    assert not root.status.is_ok


def test_scrapes_are_not_traced(traced: tuple[TestClient, InMemorySpanExporter]) -> None:
    client, exporter = traced
    client.get("/metrics")
    assert exporter.get_finished_spans() == ()


def test_tracing_off_creates_no_tracer() -> None:
    settings = mock_settings()
    app = create_app(settings)
    with TestClient(app) as c:
        assert app.state.runtime.telemetry.tracing is None
        r = c.post(CHAT, json={"model": "mock", "messages": MSGS}, headers={"traceparent": PARENT})
    assert r.status_code == 200


def test_log_lines_carry_the_trace_id(caplog: pytest.LogCaptureFixture) -> None:
    # Tracing off: the caller's trace id still joins our log lines to its trace.
    app = create_app(mock_settings())
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(JsonFormatter().format(record))

    handler = Capture()
    logging.getLogger("tollhouse.access").addHandler(handler)
    try:
        with caplog.at_level(logging.INFO), TestClient(app) as c:
            c.post(CHAT, json={"model": "mock", "messages": MSGS}, headers={"traceparent": PARENT})
    finally:
        logging.getLogger("tollhouse.access").removeHandler(handler)
    (line,) = [json.loads(x) for x in lines]
    assert line["trace_id"] == TRACE_ID
    assert line["request_id"]
    assert "hello there" not in json.dumps(line)  # never content


# ---- pure pieces ----------------------------------------------------------------------------------------


def test_trace_header_parsing() -> None:
    assert trace_id_of(PARENT) == TRACE_ID
    assert trace_id_of("00-" + "0" * 32 + "-b7ad6b7169203331-01") is None
    assert trace_id_of("garbage") is None
    assert incoming_trace_headers([(b"tracestate", b"x=1")]) is None
    assert incoming_trace_headers([(b"traceparent", PARENT.encode()), (b"tracestate", b"x=1")]) == {
        "traceparent": PARENT,
        "tracestate": "x=1",
    }


def test_genai_mapping() -> None:
    ctx = RequestContext(
        request_id="r",
        endpoint="completions",
        model_requested="fast",
        model_served="gpt-4o-mini",
        deployment="openai-east",
        usage=Usage(prompt_tokens=7, completion_tokens=3, cached_tokens=2),
        finish_reason="stop",
        error_class=None,
    )
    attrs = genai.request_attributes(ctx, 200)
    assert attrs["gen_ai.operation.name"] == "text_completion"
    assert attrs["gen_ai.request.model"] == "fast"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.usage.input_tokens"] == 7
    assert attrs["gen_ai.usage.output_tokens"] == 3
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 2
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert "error.type" not in attrs
    assert "tollhouse.retrieval.chunks" not in attrs
    assert genai.span_name(ctx) == "text_completion fast"
    ctx.retrieval = Retrieved("handbook", ["a", "b"], [], 42)
    attrs = genai.request_attributes(ctx, 200)
    assert (attrs["tollhouse.retrieval.collection"], attrs["tollhouse.retrieval.chunks"]) == ("handbook", 2)
    assert attrs["tollhouse.retrieval.tokens_added"] == 42
    ctx.error_class = "UpstreamTimeout"
    assert genai.request_attributes(ctx, 504)["error.type"] == "UpstreamTimeout"

    from tollhouse.settings import OpenAIModel

    model = OpenAIModel(name="openai-east", model="gpt-4o-mini", api_base="https://api.openai.com/v1")
    p = genai.provider_attributes(ctx, model)
    assert p["gen_ai.provider.name"] == "openai"
    assert p["gen_ai.request.model"] == "gpt-4o-mini"
    assert (p["server.address"], p["server.port"]) == ("api.openai.com", 443)


def test_a_global_provider_adds_no_second_server_span(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `opentelemetry-instrument` (a global SDK provider), FastAPI's native telemetry stays off: one
    SERVER span per request, ours, and none from the framework."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    global_exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(global_exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    settings = mock_settings(fixed={"reply": "one two"})
    ours = InMemorySpanExporter()
    app = create_app(settings, telemetry=Telemetry(settings, span_exporter=ours))
    with TestClient(app) as c:
        assert c.post(CHAT, json={"model": "mock", "messages": MSGS}).status_code == 200
        assert c.get("/health/live").status_code == 200
    assert global_exporter.get_finished_spans() == ()
    assert [s.name for s in ours.get_finished_spans() if s.kind == SpanKind.SERVER] == ["chat mock", "GET"]
