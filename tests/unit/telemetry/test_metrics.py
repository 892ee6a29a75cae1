"""Prometheus metrics after scripted requests (plain, streamed, failing), the observer API with synthetic
contexts for events no stage produces yet (cache, guardrails, fallbacks), headers and the scrape route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import mock_settings

from tollhouse.app import create_app
from tollhouse.settings import MetricsSettings, MockModel, Pricing, Settings
from tollhouse.telemetry.metrics import Metrics
from tollhouse.types import Principal, RequestContext, ToolUse, Usage

CHAT = "/v1/chat/completions"


def _msgs(text: str = "hello there friend") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = mock_settings(
        fixed={"reply": "one two three four five six", "chunk_ms": 1},
        broken={"fail_status": 500},
        priced={"pricing": {"input_per_1m": 1_000_000, "output_per_1m": 2_000_000}},
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def value(client: TestClient, name: str, **labels: str) -> float:
    metrics = client.app.state.runtime.telemetry.metrics  # type: ignore[attr-defined]
    v = metrics.registry.get_sample_value(name, labels)
    return 0.0 if v is None else float(v)


def test_plain_request_counts_tokens_duration_and_overhead(client: TestClient) -> None:
    r = client.post(CHAT, json={"model": "mock-alias", "messages": _msgs()})
    assert r.status_code == 200
    labels = {"model": "mock-alias", "deployment": "mock", "endpoint": "chat", "ingress": "openai"}
    assert value(client, "tollhouse_requests_total", **labels, status="200") == 1
    assert value(client, "tollhouse_tokens_total", model="mock-alias", deployment="mock", type="prompt") > 0
    usage = r.json()["usage"]
    assert (
        value(client, "tollhouse_tokens_total", model="mock-alias", deployment="mock", type="completion")
        == (usage["completion_tokens"])
    )
    dur = {"model": "mock-alias", "deployment": "mock", "endpoint": "chat", "stream": "false"}
    assert value(client, "tollhouse_request_duration_seconds_count", **dur) == 1
    assert value(client, "tollhouse_gateway_overhead_seconds_count", endpoint="chat", stream="false") == 1
    # Not a stream: no TTFT observation.
    assert (
        value(client, "tollhouse_time_to_first_token_seconds_count", model="mock-alias", deployment="mock")
        == 0
    )


def test_stream_records_ttft_and_time_per_output_token(client: TestClient) -> None:
    body = {"model": "fixed", "stream": True, "messages": _msgs()}
    with client.stream("POST", CHAT, json=body) as r:
        assert r.status_code == 200
        assert "ttft;dur=" in r.headers["server-timing"]
        b"".join(r.iter_bytes())
    lbl = {"model": "fixed", "deployment": "fixed"}
    assert value(client, "tollhouse_time_to_first_token_seconds_count", **lbl) == 1
    assert value(client, "tollhouse_time_per_output_token_seconds_count", **lbl) == 1
    # Six words, 1 ms apart: about 1 ms per token after the first (bounded loosely for slow machines).
    tpot = value(client, "tollhouse_time_per_output_token_seconds_sum", **lbl)
    assert 0.0005 < tpot < 0.1
    assert value(client, "tollhouse_tokens_total", **lbl, type="completion") == 6
    dur = {**lbl, "endpoint": "chat", "stream": "true"}
    assert value(client, "tollhouse_request_duration_seconds_count", **dur) == 1


def test_upstream_failure_counts_status_error_class_and_retries(client: TestClient) -> None:
    r = client.post(CHAT, json={"model": "broken", "messages": _msgs()})
    assert r.status_code == 502
    lbl = {"model": "broken", "deployment": "broken", "endpoint": "chat", "ingress": "openai"}
    assert value(client, "tollhouse_requests_total", **lbl, status="502") == 1
    attempts = value(client, "tollhouse_provider_attempts_total", model="broken")
    assert attempts >= 1
    # Every failed attempt is one upstream error; all but the first were retries.
    errors = value(
        client, "tollhouse_upstream_errors_total", deployment="broken", **{"class": "server_error"}
    )
    assert errors == attempts
    assert value(client, "tollhouse_retries_total", model="broken") == attempts - 1


def test_unknown_model_is_not_a_label(client: TestClient) -> None:
    r = client.post(CHAT, json={"model": "no-such-model-123", "messages": _msgs()})
    assert r.status_code == 404
    text = client.get("/metrics").text
    assert "no-such-model-123" not in text
    lbl = {"model": "", "deployment": "", "endpoint": "chat", "ingress": "openai", "status": "404"}
    assert value(client, "tollhouse_requests_total", **lbl) == 1


def test_cost_by_model_and_key(client: TestClient) -> None:
    r = client.post(CHAT, json={"model": "priced", "messages": _msgs("a b c d")})
    usage = r.json()["usage"]
    expected = usage["prompt_tokens"] * 1.0 + usage["completion_tokens"] * 2.0
    assert value(client, "tollhouse_cost_usd_total", model="priced", key="", team="") == pytest.approx(
        expected
    )


def test_scrape_route_serves_the_exposition_format(client: TestClient) -> None:
    client.post(CHAT, json={"model": "mock", "messages": _msgs()})
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(r.text)}
    assert {
        "tollhouse_requests",
        "tollhouse_request_duration_seconds",
        "tollhouse_time_to_first_token_seconds",
        "tollhouse_time_per_output_token_seconds",
        "tollhouse_gateway_overhead_seconds",
        "tollhouse_tokens",
        "tollhouse_cost_usd",
        "tollhouse_cache_events",
        "tollhouse_guardrail_events",
        "tollhouse_upstream_errors",
        "tollhouse_retries",
        "tollhouse_fallbacks",
        "tollhouse_circuit_breaker_state",
        "tollhouse_requests_in_flight",
        "process_cpu_seconds",
    } <= names
    # The scrape itself is in flight while it renders.
    assert value(client, "tollhouse_requests_in_flight") == 1


def test_server_timing_has_the_stage_breakdown(client: TestClient) -> None:
    r = client.post(CHAT, json={"model": "mock", "messages": _msgs()})
    timing = r.headers["server-timing"]
    for stage in ("auth", "route", "limits", "guard_input", "upstream", "overhead", "total"):
        assert f"{stage};dur=" in timing
    assert "cache_lookup" not in timing  # the cache is off here: no stage ran
    assert float(r.headers["x-tollhouse-overhead-ms"]) >= 0


def test_server_timing_names_the_cache_lookup_when_the_cache_is_on() -> None:
    settings = mock_settings().model_copy(deep=True)
    settings.cache.mode = "exact"
    with TestClient(create_app(settings)) as c:
        r = c.post(CHAT, json={"model": "mock", "messages": _msgs()})
    assert "cache_lookup;dur=" in r.headers["server-timing"]


def test_timing_headers_can_be_turned_off() -> None:
    settings = mock_settings().model_copy(deep=True)
    settings.telemetry.server_timing = False
    with TestClient(create_app(settings)) as c:
        r = c.post(CHAT, json={"model": "mock", "messages": _msgs()})
    assert "server-timing" not in r.headers
    assert "x-tollhouse-overhead-ms" not in r.headers


def test_metrics_behind_the_admin_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TH_TEST_ADMIN_KEY", "s3cret")
    base = mock_settings()
    settings = Settings.model_validate(
        {
            **base.model_dump(),
            "auth": {"admin_key_env": "TH_TEST_ADMIN_KEY"},
            "telemetry": {"metrics": {"require_admin_key": True}},
        }
    )
    with TestClient(create_app(settings)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"authorization": "Bearer nope"}).status_code == 401
        assert c.get("/metrics", headers={"authorization": "Bearer s3cret"}).status_code == 200


def test_metrics_off_means_no_route() -> None:
    settings = mock_settings().model_copy(deep=True)
    settings.telemetry.metrics.enabled = False
    with TestClient(create_app(settings)) as c:
        assert c.post(CHAT, json={"model": "mock", "messages": _msgs()}).status_code == 200
        assert c.get("/metrics").status_code == 404


# ---- observer API with synthetic contexts -------------------------------------------------------------


def _metrics(**kw: Any) -> Metrics:
    models = [MockModel(name="m", pricing=Pricing(input_per_1m=10, output_per_1m=20))]
    return Metrics(MetricsSettings(**kw), models)  # type: ignore[arg-type]


def _ctx(**kw: Any) -> RequestContext:
    ctx = RequestContext(request_id="r1", model_requested="m", deployment="m", model_served="m")
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def _get(m: Metrics, name: str, **labels: str) -> float:
    v = m.registry.get_sample_value(name, labels)
    return 0.0 if v is None else float(v)


def test_cache_and_guardrail_events() -> None:
    m = _metrics()
    m.observe(_ctx(cache_status="hit"), 200, 0.01)
    m.observe(_ctx(cache_status="miss"), 200, 0.01)
    m.observe(_ctx(cache_status="weird-new-kind"), 200, 0.01)
    m.observe(_ctx(guardrail_events=[("pii", "redact"), ("jailbreak", "block")]), 400, 0.01)
    assert _get(m, "tollhouse_cache_events_total", model="m", type="hit") == 1
    assert _get(m, "tollhouse_cache_events_total", model="m", type="miss") == 1
    assert _get(m, "tollhouse_cache_events_total", model="m", type="other") == 1
    assert _get(m, "tollhouse_guardrail_events_total", rule="pii", outcome="redact") == 1
    assert _get(m, "tollhouse_guardrail_events_total", rule="jailbreak", outcome="block") == 1


def test_fallbacks_retries_and_failed_attempts() -> None:
    m = _metrics()
    # Two failures on "a" (a retry), then a fallback to another group whose deployment "m" served.
    ctx = _ctx(attempts=3, fallbacks=1, failures=["a:timeout", "a:server_error"])
    m.observe(ctx, 200, 0.5)
    assert _get(m, "tollhouse_provider_attempts_total", model="m") == 3
    assert _get(m, "tollhouse_retries_total", model="m") == 1
    assert _get(m, "tollhouse_fallbacks_total", model="m", deployment="m") == 1
    assert _get(m, "tollhouse_upstream_errors_total", deployment="a", **{"class": "timeout"}) == 1
    assert _get(m, "tollhouse_upstream_errors_total", deployment="a", **{"class": "server_error"}) == 1
    # A final failure routing did not move on from is counted once, by its class.
    m.observe(
        _ctx(attempts=1, error_class="UpstreamRateLimited", error_type="rate_limit_error", status=429),
        429,
        0.1,
    )
    assert _get(m, "tollhouse_upstream_errors_total", deployment="m", **{"class": "rate_limit"}) == 1


def test_cost_labels_key_and_team_unless_turned_off() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=500)
    principal = Principal(key_id="key-1", team="research", anonymous=False)
    m = _metrics()
    m.observe(_ctx(usage=usage, principal=principal), 200, 0.1)
    assert _get(m, "tollhouse_cost_usd_total", model="m", key="key-1", team="research") == pytest.approx(0.02)
    m2 = _metrics(key_labels=False)
    m2.observe(_ctx(usage=usage, principal=principal), 200, 0.1)
    assert _get(m2, "tollhouse_cost_usd_total", model="m", key="", team="") == pytest.approx(0.02)


def test_circuit_and_queue_gauges_come_from_live_sources() -> None:
    m = _metrics()

    class Engine:
        queue_depth = 3
        in_flight = 4

    m.watch_deployments([("local", Engine()), ("remote", object())])
    m.watch_circuits(lambda: {"a": {"state": "open"}, "b": {"state": "closed"}})
    m.render()
    assert _get(m, "tollhouse_embedded_queue_depth", deployment="local") == 3
    assert _get(m, "tollhouse_embedded_in_flight", deployment="local") == 4
    assert m.registry.get_sample_value("tollhouse_embedded_queue_depth", {"deployment": "remote"}) is None
    assert _get(m, "tollhouse_circuit_breaker_state", deployment="a") == 2
    assert _get(m, "tollhouse_circuit_breaker_state", deployment="b") == 0


def test_requests_without_a_context_are_counted_as_other() -> None:
    m = _metrics()
    m.observe(None, 200, 0.001)
    lbl = {"model": "", "deployment": "", "endpoint": "other", "ingress": "openai", "status": "200"}
    assert _get(m, "tollhouse_requests_total", **lbl) == 1


def test_tool_calls_errors_and_latency() -> None:
    m = _metrics()
    uses = [
        ToolUse("calculator", "{}", "ok", 0.002, "4", 1),
        ToolUse("calculator", "{}", "timeout", 1.5, "", 1),
        ToolUse("made_up_name", "{}", "unknown_tool", 0.0, "", 2),
        ToolUse("client_fn", "{}", "skipped", 0.0, "", 2),
    ]
    m.observe(_ctx(tools_used=uses), 200, 0.01)
    assert _get(m, "tollhouse_tool_calls_total", tool="calculator", status="ok") == 1
    assert _get(m, "tollhouse_tool_calls_total", tool="calculator", status="timeout") == 1
    assert _get(m, "tollhouse_tool_calls_total", tool="(unknown)", status="unknown_tool") == 1
    assert _get(m, "tollhouse_tool_errors_total", tool="calculator") == 1
    assert _get(m, "tollhouse_tool_errors_total", tool="client_fn") == 0
    assert _get(m, "tollhouse_tool_duration_seconds_count", tool="calculator") == 2
