"""W3C trace context reaches a real upstream process: with tracing on, as a child of our provider-call
span; with tracing off, the caller's own traceparent unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from tests.support.mock_upstream import admin, start_mock_upstream, stop

from tollhouse.app import create_app
from tollhouse.settings import Settings
from tollhouse.telemetry.observer import Telemetry

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    proc, base = start_mock_upstream()
    try:
        yield base
    finally:
        stop(proc)


def settings(base: str) -> Settings:
    return Settings.model_validate(
        {
            "embedded": {"chat": False, "embeddings": False},
            "logging": {"format": "text"},
            "cache": {"mode": "off"},
            "models": [{"name": "up", "provider": "openai", "api_base": base}],
        }
    )


def last_request_headers(base: str) -> dict[str, Any]:
    reqs = admin(base, "/__requests")
    headers: dict[str, Any] = reqs[-1]["headers"]
    return headers


@pytest.mark.parametrize("stream", [False, True])
def test_tracing_on_sends_the_provider_span_as_parent(upstream: str, stream: bool) -> None:
    s = settings(upstream)
    exporter = InMemorySpanExporter()
    app = create_app(s, telemetry=Telemetry(s, span_exporter=exporter))
    body = {"model": "up", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    with TestClient(app) as c:
        r = c.post("/v1/chat/completions", json=body, headers={"traceparent": PARENT})
        assert r.status_code == 200
    sent = last_request_headers(upstream)["traceparent"]
    version, trace_id, parent_id, flags = sent.split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    (call,) = [x for x in exporter.get_finished_spans() if x.kind == SpanKind.CLIENT]
    assert parent_id == f"{call.context.span_id:016x}"
    attrs = dict(call.attributes or {})
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["server.address"] == "127.0.0.1"


def test_tracing_off_passes_the_callers_context_through(upstream: str) -> None:
    app = create_app(settings(upstream))
    with TestClient(app) as c:
        body = {"model": "up", "messages": [{"role": "user", "content": "hi"}]}
        c.post("/v1/chat/completions", json=body, headers={"traceparent": PARENT, "tracestate": "v=1"})
        sent = last_request_headers(upstream)
        assert sent["traceparent"] == PARENT
        assert sent["tracestate"] == "v=1"
        c.post("/v1/chat/completions", json=body)
        assert "traceparent" not in last_request_headers(upstream)
