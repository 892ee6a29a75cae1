"""Routing through the real Gateway against mock deployments with scripted faults: fallback order, which
failures are retried / fall back / are returned, Retry-After, timeouts and the shared deadline, breakers
skipping deployments, strategies, concurrency caps."""

from __future__ import annotations

import asyncio
import time

import pytest
from tests.support.routing_kit import Kit, group, request

from tollhouse.errors import (
    Overloaded,
    UpstreamBadRequest,
    UpstreamContentFiltered,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tollhouse.operations import CHAT
from tollhouse.types import RequestContext

FAST_RETRY = {"base_delay_s": 0.01, "max_delay_s": 0.05}


async def test_plain_model_is_served_in_one_attempt() -> None:
    kit = Kit({"a": {}})
    text, ctx = await kit.chat("a")
    assert text == "from a" and ctx.deployment == "a" and ctx.attempts == 1 and ctx.failures is None


async def test_fallback_order_follows_priority_then_fallback_chain() -> None:
    kit = Kit(
        {"a": {"faults": ["status:500"]}, "b": {"faults": ["status:503"]}, "c": {}, "d": {}},
        {
            "retry": {"max_retries": 1, **FAST_RETRY},
            "groups": [group("g", "a", "b", fallbacks=[{"to": ["c", "d"]}])],
        },
    )
    text, ctx = await kit.chat("g")
    assert text == "from c" and ctx.deployment == "c"
    assert ctx.failures == ["a:server_error", "b:server_error"]
    assert (ctx.attempts, ctx.fallbacks) == (3, 1)
    assert kit.calls("d") == 0


async def test_bad_request_is_returned_not_retried_or_fallen_back() -> None:
    kit = Kit(
        {"a": {"faults": ["status:400"]}, "b": {}},
        {"groups": [group("g", "a", "b", fallbacks=[{"to": ["b"]}])]},
    )
    with pytest.raises(UpstreamBadRequest):
        await kit.chat("g")
    assert kit.calls("a") == 1 and kit.calls("b") == 0


async def test_retry_after_is_waited_for_then_the_same_deployment_retried() -> None:
    kit = Kit({"a": {"faults": ["status:429:0.25", "ok"]}}, {"retry": {"max_retries": 2}})
    text, ctx = await kit.chat("a")
    assert text == "from a" and ctx.attempts == 2
    assert kit.sleep.delays == [0.25]


async def test_retry_after_beyond_the_cap_goes_to_the_client() -> None:
    kit = Kit({"a": {"faults": ["status:429:60"]}}, {"retry": {"max_retry_after_s": 5}})
    with pytest.raises(UpstreamRateLimited) as e:
        await kit.chat("a")
    assert e.value.retry_after == 60 and kit.calls("a") == 1 and kit.sleep.delays == []


async def test_another_member_is_tried_at_once_before_any_backoff() -> None:
    kit = Kit(
        {"a": {"faults": ["status:502", "ok"]}, "b": {"faults": ["status:502", "ok"]}},
        {"retry": {"max_retries": 2, **FAST_RETRY}, "groups": [group("g", "a", "b")]},
    )
    text, ctx = await kit.chat("g")
    # a fails, b fails (no wait: a different deployment), then a backoff before a member is retried.
    assert ctx.failures == ["a:server_error", "b:server_error"] and ctx.attempts == 3
    assert len(kit.sleep.delays) == 1 and 0 <= kit.sleep.delays[0] <= 0.01
    assert text == "from a"  # priority: the retry goes to the first member again


async def test_retries_are_bounded() -> None:
    kit = Kit({"a": {"faults": ["status:500"]}}, {"retry": {"max_retries": 2, **FAST_RETRY}})
    with pytest.raises(UpstreamUnavailable):
        await kit.chat("a")
    assert kit.calls("a") == 3 and len(kit.sleep.delays) == 2


@pytest.mark.parametrize(
    ("fault", "cls"),
    [("reset", "connection"), ("status:504", "timeout"), ("status:429", "rate_limit")],
)
async def test_each_retry_safe_failure_falls_back(fault: str, cls: str) -> None:
    kit = Kit(
        {"a": {"faults": [fault]}, "b": {}},
        {"retry": {"max_retries": 0}, "groups": [group("g", "a", fallbacks=[{"to": ["b"]}])]},
    )
    text, ctx = await kit.chat("g")
    assert text == "from b" and ctx.failures == [f"a:{cls}"]


async def test_context_window_goes_to_the_larger_model_only_when_configured() -> None:
    routing = {
        "groups": [
            group("small-then-big", "small", fallbacks=[{"when": ["context_window"], "to": ["big"]}]),
            group("small-default", "small", fallbacks=[{"to": ["big"]}]),
        ]
    }
    kit = Kit({"small": {"faults": ["context"]}, "big": {}}, routing)
    text, ctx = await kit.chat("small-then-big")
    assert text == "from big" and ctx.failures == ["small:context_window"] and kit.calls("small") == 1
    with pytest.raises(Exception, match="context window"):
        await kit.chat("small-default")  # default triggers exclude context_window


async def test_content_filter_falls_back_when_listed() -> None:
    kit = Kit(
        {"strict": {"faults": ["filter"]}, "lenient": {}},
        {"groups": [group("g", "strict", fallbacks=[{"when": ["content_filter"], "to": ["lenient"]}])]},
    )
    text, _ = await kit.chat("g")
    assert text == "from lenient"
    kit2 = Kit({"strict": {"faults": ["filter"]}})
    with pytest.raises(UpstreamContentFiltered):
        await kit2.chat("strict")


async def test_latency_spike_beyond_total_timeout_fails_over() -> None:
    kit = Kit(
        {"a": {"faults": ["latency:5000"], "timeouts": {"total_s": 0.05}}, "b": {}},
        {"groups": [group("g", "a", "b")]},
    )
    t0 = time.perf_counter()
    text, ctx = await kit.chat("g")
    assert text == "from b" and ctx.failures == ["a:timeout"]
    assert time.perf_counter() - t0 < 1.0


async def test_request_deadline_is_shared_by_every_attempt() -> None:
    kit = Kit(
        {"a": {"faults": ["hang"]}, "b": {"faults": ["hang"]}},
        {"request_timeout_s": 0.2, "groups": [group("g", "a", "b")]},
    )
    t0 = time.perf_counter()
    with pytest.raises(UpstreamTimeout):
        await kit.chat("g")
    assert time.perf_counter() - t0 < 0.6


async def test_backoff_that_would_pass_the_deadline_is_not_taken() -> None:
    kit = Kit({"a": {"faults": ["status:429:3", "ok"]}}, {"request_timeout_s": 1.0})
    with pytest.raises(UpstreamRateLimited):
        await kit.chat("a")
    assert kit.sleep.delays == [] and kit.calls("a") == 1


async def test_open_circuit_skips_the_deployment_until_cooldown() -> None:
    kit = Kit(
        {"a": {"faults": ["status:500"]}, "b": {}},
        {
            "retry": {"max_retries": 1},
            "breaker": {"failure_threshold": 2, "cooldown_s": 30},
            "groups": [group("g", "a", "b")],
        },
    )
    for _ in range(2):
        await kit.chat("g")
    assert kit.circuit("a") == "open" and kit.calls("a") == 2
    text, ctx = await kit.chat("g")
    assert text == "from b" and ctx.attempts == 1 and kit.calls("a") == 2  # skipped, not tried
    kit.clock.advance(30)
    await kit.chat("g")  # the probe goes to a (fails), b answers
    assert kit.calls("a") == 3 and kit.circuit("a") == "open"


async def test_half_open_probe_success_closes_and_concurrent_requests_do_not_all_probe() -> None:
    kit = Kit(
        {"a": {"faults": ["status:500", "status:500", "latency:50"]}, "b": {}},
        {
            "retry": {"max_retries": 1},
            "breaker": {"failure_threshold": 2, "cooldown_s": 10, "half_open_probes": 1},
            "groups": [group("g", "a", "b")],
        },
    )
    for _ in range(2):
        await kit.chat("g")
    kit.clock.advance(10)
    results = await asyncio.gather(*(kit.chat("g") for _ in range(5)))
    served = [ctx.deployment for _, ctx in results]
    assert served.count("a") == 1 and served.count("b") == 4  # one probe, the rest elsewhere
    assert kit.circuit("a") == "closed"


async def test_all_circuits_open_is_a_503_with_retry_after() -> None:
    kit = Kit(
        {"a": {"faults": ["status:500"]}}, {"retry": {"max_retries": 0}, "breaker": {"failure_threshold": 1}}
    )
    with pytest.raises(UpstreamUnavailable):
        await kit.chat("a")
    with pytest.raises(UpstreamUnavailable) as e:
        await kit.chat("a")
    assert e.value.status == 503 and e.value.retry_after == 15 and kit.calls("a") == 1


async def test_weighted_strategy_follows_weights_with_a_seed() -> None:
    kit = Kit(
        {"a": {}, "b": {}},
        {
            "groups": [
                {
                    "name": "g",
                    "strategy": "weighted",
                    "deployments": [{"model": "a", "weight": 3}, {"model": "b"}],
                }
            ]
        },
    )
    for _ in range(400):
        await kit.chat("g")
    assert 260 < kit.calls("a") < 340 and kit.calls("a") + kit.calls("b") == 400


async def test_least_busy_and_concurrency_caps() -> None:
    kit = Kit(
        {"a": {"latency_ms": 30, "max_concurrency": 1}, "b": {"latency_ms": 30, "max_concurrency": 1}},
        {"groups": [group("g", "a", "b", strategy="least_busy")]},
    )
    results = await asyncio.gather(*(kit.chat("g") for _ in range(2)), return_exceptions=True)
    assert sorted(ctx.deployment for _, ctx in results) == ["a", "b"]  # type: ignore[misc]
    results = await asyncio.gather(*(kit.chat("g") for _ in range(3)), return_exceptions=True)
    assert sum(isinstance(r, Overloaded) for r in results) == 1  # both full: the third is refused


async def test_latency_strategy_prefers_the_faster_deployment() -> None:
    kit = Kit(
        {"slow": {"latency_ms": 20}, "fast": {"latency_ms": 1}},
        {"groups": [group("g", "slow", "fast", strategy="latency")]},
    )
    for _ in range(10):
        await kit.chat("g")
    assert kit.calls("fast") >= 8


async def test_deployment_too_small_for_max_tokens_is_skipped() -> None:
    kit = Kit(
        {"a": {"faults": ["status:500"], "max_output_tokens": 100}, "b": {"max_output_tokens": 10}},
        {"retry": {"max_retries": 1, **FAST_RETRY}, "groups": [group("g", "a", "b")]},
    )
    with pytest.raises(UpstreamUnavailable):
        await kit.chat("g", max_tokens=50)
    assert kit.calls("b") == 0


async def test_one_of_two_deployments_failing_half_the_time_is_invisible_to_clients() -> None:
    kit = Kit(
        {"flaky": {"faults": ["status:500"], "fault_rate": 0.5, "fault_seed": 3}, "steady": {}},
        {"groups": [group("g", "flaky", "steady", strategy="weighted")]},
    )
    ok = 0
    for _ in range(1000):
        ctx = RequestContext(request_id="x")
        try:
            await kit.gateway.handle(ctx, CHAT, request("g"))
            ok += 1
        except UpstreamUnavailable:
            pass
    assert ok == 1000 and kit.calls("flaky") > 0
