"""Per-version figures from counters, comparisons with intervals, and the rollback rule."""

from __future__ import annotations

from tollhouse.prompts import metrics
from tollhouse.settings import RollbackSettings
from tollhouse.types import RequestContext, Usage


def _counts(requests: int, errors: int) -> dict[str, int]:
    return {"requests": requests, "errors": errors, "l2": requests}


def test_rollback_needs_min_requests_and_twice_the_error_rate() -> None:
    policy = RollbackSettings()
    old = _counts(200, 10)  # 5 %
    assert metrics.should_roll_back(_counts(99, 20), old, policy) is None  # 20 % but only 99 requests
    why = metrics.should_roll_back(_counts(100, 10), old, policy)
    assert why is not None and "0.100" in why and "0.050" in why  # exactly 2x over 100
    assert metrics.should_roll_back(_counts(100, 9), old, policy) is None  # 1.8x
    assert metrics.should_roll_back(_counts(100, 0), _counts(100, 0), policy) is None  # no errors at all
    assert metrics.should_roll_back(_counts(100, 50), {}, policy) is None  # nothing to compare with
    # Against a version without errors: 1 in 100 is noise (below min_error_rate), 2 in 100 is not.
    assert metrics.should_roll_back(_counts(100, 1), _counts(100, 0), policy) is None
    assert metrics.should_roll_back(_counts(100, 2), _counts(100, 0), policy) is not None


def test_rollback_on_a_rating_drop_when_configured() -> None:
    policy = RollbackSettings(rating_drop=0.5, min_ratings=2)
    old = {**_counts(100, 0), **_sum_ratings([5, 5, 4])}
    new = {**_counts(100, 0), **_sum_ratings([4, 4, 3])}
    assert metrics.should_roll_back(new, old, policy) is not None
    assert metrics.should_roll_back(new, old, RollbackSettings()) is None


def _sum_ratings(scores: list[float]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in scores:
        for k, v in metrics.rating(s).items():
            out[k] = out.get(k, 0) + v
    return out


def test_summary_and_latency_quantiles() -> None:
    counts: dict[str, int] = {}
    for status, latency in [(200, 0.01)] * 90 + [(502, 3.0)] * 10:
        ctx = RequestContext("r", started=0.0)
        ctx.status, ctx.usage, ctx.cost_usd = status, Usage(10, 5), 0.001
        ctx.started = __import__("time").perf_counter() - latency
        for k, v in metrics.deltas(ctx).items():
            counts[k] = counts.get(k, 0) + v
    s = metrics.summary(counts)
    assert s["requests"] == 100 and s["errors"] == 10 and s["error_rate"] == 0.1
    assert s["latency_p50_s"] == 0.025 and s["latency_p95_s"] == 4.0
    assert s["prompt_tokens"] == 1000 and s["completion_tokens"] == 500
    assert abs(s["cost_usd"] - 0.1) < 1e-9


def test_comparison_intervals_contain_the_difference() -> None:
    a = {**_counts(1000, 100), **_sum_ratings([4.0] * 50 + [2.0] * 50)}
    b = {**_counts(1000, 50), **_sum_ratings([4.0] * 100)}
    c = metrics.compare(a, b)
    lo, hi = c["error_rate_diff"]["ci95"]
    assert abs(c["error_rate_diff"]["estimate"] - 0.05) < 1e-9 and lo < 0.05 < hi and lo > 0
    lo, hi = c["rating_diff"]["ci95"]
    assert c["rating_diff"]["estimate"] == -1.0 and lo < -1.0 < hi
    assert metrics.compare(_counts(0, 0), b) == {"error_rate_diff": None, "rating_diff": None}


def test_trace_attributes_name_the_prompt_and_version() -> None:
    from tollhouse.telemetry.genai import request_attributes

    ctx = RequestContext("r")
    assert "tollhouse.prompt.id" not in request_attributes(ctx, 200)
    ctx.prompt_template, ctx.prompt_version = "greet", "3"
    attrs = request_attributes(ctx, 200)
    assert attrs["tollhouse.prompt.id"] == "greet" and attrs["tollhouse.prompt.version"] == "3"
