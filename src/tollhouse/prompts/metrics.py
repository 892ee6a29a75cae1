"""Per-version metrics from integer counters: what one finished request adds, the summary the admin API
shows (error rate, latency p50 / p95 from fixed buckets, tokens, cost, cache hits, ratings, guardrail
blocks), comparisons between versions with 95 % confidence intervals, and the rollback rule."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tollhouse.settings import RollbackSettings
from tollhouse.types import RequestContext

# Latency bucket upper bounds in seconds (the last is everything slower).
LATENCY_BOUNDS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, math.inf)
_Z95 = 1.96


def deltas(ctx: RequestContext, prefix: str = "") -> dict[str, int]:
    """What one finished request adds to its version's counters (``prefix`` ``s_`` for shadow runs)."""
    latency = ctx.elapsed()
    i = next(i for i, b in enumerate(LATENCY_BOUNDS) if latency <= b)
    out = {"requests": 1, f"l{i}": 1}
    if ctx.status >= 500:
        out["errors"] = 1
    elif ctx.status >= 400:
        out["refused"] = 1
    if ctx.usage is not None:
        out["prompt_tokens"] = ctx.usage.prompt_tokens
        out["completion_tokens"] = ctx.usage.completion_tokens
    if ctx.cost_usd is not None:
        out["cost_micros"] = round(ctx.cost_usd * 1_000_000)
    if ctx.cache_status in ("hit", "semantic-hit"):
        out["cache_hits"] = 1
    if ctx.guardrail_blocked is not None:
        out["guardrail_blocks"] = 1
    return {prefix + k: v for k, v in out.items()} if prefix else out


def rating(score: float) -> dict[str, int]:
    """A rating's counters (scores kept in thousandths, so sums stay integers)."""
    milli = round(score * 1000)
    return {"ratings": 1, "rating_milli": milli, "rating_sq_micro": milli * milli}


def _quantile(counts: Mapping[str, int], prefix: str, n: int, q: float) -> float | None:
    if n == 0:
        return None
    target = q * n
    seen = 0
    for i, bound in enumerate(LATENCY_BOUNDS):
        seen += counts.get(f"{prefix}l{i}", 0)
        if seen >= target:
            return bound if math.isfinite(bound) else LATENCY_BOUNDS[-2]
    return None


def summary(counts: Mapping[str, int], prefix: str = "") -> dict[str, Any]:
    """The figures for one version (``prefix``: its shadow runs)."""

    def c(name: str) -> int:
        return counts.get(prefix + name, 0)

    n = c("requests")
    ratings = c("ratings")
    mean = c("rating_milli") / 1000 / ratings if ratings else None
    return {
        "requests": n,
        "errors": c("errors"),
        "error_rate": c("errors") / n if n else None,
        "refused": c("refused"),
        "latency_p50_s": _quantile(counts, prefix, n, 0.5),
        "latency_p95_s": _quantile(counts, prefix, n, 0.95),
        "prompt_tokens": c("prompt_tokens"),
        "completion_tokens": c("completion_tokens"),
        "cost_usd": c("cost_micros") / 1_000_000,
        "cache_hit_rate": c("cache_hits") / n if n else None,
        "guardrail_blocks": c("guardrail_blocks"),
        "ratings": ratings,
        "rating_mean": mean,
    }


def _rating_var(counts: Mapping[str, int]) -> tuple[float, int] | None:
    n = counts.get("ratings", 0)
    if n < 2:
        return None
    mean = counts.get("rating_milli", 0) / 1000 / n
    sq = counts.get("rating_sq_micro", 0) / 1_000_000 / n
    return max(0.0, (sq - mean * mean) * n / (n - 1)), n


def compare(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, Any]:
    """``a`` minus ``b``: error-rate and mean-rating differences with 95 % intervals (normal approximation;
    None where either side has too little data)."""
    out: dict[str, Any] = {"error_rate_diff": None, "rating_diff": None}
    na, nb = a.get("requests", 0), b.get("requests", 0)
    if na and nb:
        pa, pb = a.get("errors", 0) / na, b.get("errors", 0) / nb
        half = _Z95 * math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
        out["error_rate_diff"] = {"estimate": pa - pb, "ci95": [pa - pb - half, pa - pb + half]}
    va, vb = _rating_var(a), _rating_var(b)
    if va is not None and vb is not None:
        ma = a["rating_milli"] / 1000 / va[1]
        mb = b["rating_milli"] / 1000 / vb[1]
        half = _Z95 * math.sqrt(va[0] / va[1] + vb[0] / vb[1])
        out["rating_diff"] = {"estimate": ma - mb, "ci95": [ma - mb - half, ma - mb + half]}
    return out


def should_roll_back(new: Mapping[str, int], old: Mapping[str, int], policy: RollbackSettings) -> str | None:
    """Why the label should move back from the version counted in ``new`` to the one in ``old``; None
    while the new one has served fewer than ``min_requests`` or does no worse."""
    n, o = new.get("requests", 0), old.get("requests", 0)
    if n < policy.min_requests or o == 0:
        return None
    new_rate = new.get("errors", 0) / n
    old_rate = old.get("errors", 0) / o
    if new_rate > 0 and new_rate >= policy.min_error_rate and new_rate >= policy.error_ratio * old_rate:
        return (
            f"error rate {new_rate:.3f} over {n} requests is >= {policy.error_ratio:g}x "
            f"the previous version's {old_rate:.3f} over {o}"
        )
    if policy.rating_drop is not None:
        rn, ro = new.get("ratings", 0), old.get("ratings", 0)
        if rn >= policy.min_ratings and ro >= policy.min_ratings:
            drop = old["rating_milli"] / 1000 / ro - new["rating_milli"] / 1000 / rn
            if drop >= policy.rating_drop:
                return f"mean rating fell by {drop:.2f} (>= {policy.rating_drop:g}) over {rn} ratings"
    return None
