"""The Overview page's figures: time series over a window, totals, top spenders, budget burn-down and
emergency mode — all read from the ledger (every replica) and the runtime, concurrently."""

from __future__ import annotations

import asyncio
import calendar
import time
from dataclasses import dataclass
from typing import Any

from tollhouse.runtime import Runtime
from tollhouse.stores.ledger_views import LedgerViews, percentile
from tollhouse.ui import rollup
from tollhouse.ui.rollup import Rollup
from tollhouse.ui.tail import Tail


@dataclass(slots=True, frozen=True)
class Window:
    name: str
    label: str
    seconds: int
    step: int


WINDOWS = {
    "hour": Window("hour", "Last hour", 3600, 60),
    "day": Window("day", "Last 24 hours", 86400, 3600),
    "month": Window("month", "Last 30 days", 30 * 86400, 6 * 3600),
}
TOP = 5


def day_start(now: float) -> float:
    return float(int(now // 86400) * 86400)


def month_start(now: float) -> float:
    t = time.gmtime(now)
    return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, 0)))


def filled(rows: list[dict[str, Any]], since: float, w: Window) -> dict[str, list[Any]]:
    """Column arrays over every bucket of the window (empty buckets: 0, percentiles: None)."""
    by_t = {round((r["t"] - since) / w.step): r for r in rows}
    n = w.seconds // w.step
    cols: dict[str, list[Any]] = {
        k: [] for k in ("t", "requests", "errors", "tokens", "cost_usd", "saved_usd", "p50_ms", "p95_ms")
    }
    for i in range(n):
        r = by_t.get(i)
        cols["t"].append(since + i * w.step)
        for k in list(cols)[1:]:
            default = None if k.startswith("p") else 0
            cols[k].append(r[k] if r is not None else default)
    return cols


def totals(cols: dict[str, list[Any]], p50: float | None, p95: float | None) -> dict[str, Any]:
    n = sum(cols["requests"])
    errors = sum(cols["errors"])
    return {
        "requests": n,
        "errors": errors,
        "error_rate": errors / n if n else 0.0,
        "p50_ms": p50,
        "p95_ms": p95,
        "tokens": sum(cols["tokens"]),
        "cost_usd": sum(cols["cost_usd"]),
        "saved_usd": sum(cols["saved_usd"]),
    }


def overhead(tail: Tail, since: float) -> dict[str, float | None]:
    """Gateway overhead (total minus time waiting on providers) of this process's recent requests."""
    values = sorted(tail.overheads_since(since))
    return {"p50_ms": percentile(values, 0.5), "p95_ms": percentile(values, 0.95), "n": len(values)}


async def top_spenders(runtime: Runtime, since: float, until: float) -> dict[str, list[dict[str, Any]]]:
    groups = ("model", "key_id", "user", "team")
    reports = await asyncio.gather(*(runtime.reports.usage(g, since, until) for g in groups))
    out = {}
    for g, rep in zip(groups, reports, strict=True):
        out[g] = [r for r in rep["data"] if r[g] is not None][:TOP]
    return out


async def burn_down(runtime: Runtime, views: LedgerViews, hours: Rollup, now: float) -> list[dict[str, Any]]:
    """Every configured budget (keys, users, teams) with today's / this month's spend against its cap."""
    d0, m0 = day_start(now), month_start(now)
    keys = [k for k in await runtime.keys.list() if k.revoked_at is None and (k.daily_usd or k.monthly_usd)]
    cfg = runtime.settings.budgets
    budgets: list[tuple[str, str, str, float | None, float | None]] = [
        ("key_id", k.id, k.name or k.id, k.daily_usd, k.monthly_usd) for k in keys
    ]
    budgets += [("user", u, u, b.daily_usd, b.monthly_usd) for u, b in cfg.users.items()]
    budgets += [("team", t, t, b.daily_usd, b.monthly_usd) for t, b in cfg.teams.items()]
    if not budgets:
        return []
    kinds = sorted({b[0] for b in budgets})
    month = await hours.hours_between(views, m0, now + 1)
    spent: dict[tuple[str, str, str], float] = {}
    for period, start in (("day", d0), ("month", m0)):
        for g in kinds:
            for value, sums in rollup.by(month, g, since=start).items():
                spent[(period, g, str(value))] = sums["cost_usd"]
    thresholds = sorted(cfg.alerts.thresholds)
    out = []
    for kind, value, label, daily, monthly in budgets:
        for period, cap in (("day", daily), ("month", monthly)):
            if cap:
                used = spent.get((period, kind, value), 0.0)
                share = used / cap
                crossed = [t for t in thresholds if share >= t]
                out.append(
                    {
                        "kind": kind.replace("key_id", "key"),
                        "name": label,
                        "period": period,
                        "spent": used,
                        "cap": cap,
                        "share": share,
                        "alert": max(crossed) if crossed else None,
                    }
                )
    return sorted(out, key=lambda b: -b["share"])


async def emergency(runtime: Runtime, now: float) -> dict[str, Any]:
    em = runtime.access.emergency
    if em is None:
        return {"configured": False}
    spent = await runtime.reports.store.spent_usd(day_start(now), now + 1) if runtime.reports.store else None
    return {
        "configured": True,
        "active": em.active,
        "threshold": em.cfg.daily_spend_usd,
        "model": em.cfg.model,
        "spent_today": spent,
    }


def _top_from(hours: dict[int, rollup.Hour]) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for g in ("model", "key_id", "user", "team"):
        sums = sorted(
            ((k, v) for k, v in rollup.by(hours, g).items() if k is not None),
            key=lambda kv: (-kv[1]["cost_usd"], -kv[1]["requests"]),
        )
        out[g] = [{g: k, **v} for k, v in sums[:TOP]]
    return out


async def overview(
    runtime: Runtime, views: LedgerViews, hours: Rollup, tail: Tail, w: Window
) -> dict[str, Any]:
    """The hour: read live in minutes. A day or 30 days: from the hourly rollup."""
    now = time.time()
    since = now - w.seconds
    since = float(int(since // w.step) * w.step) + w.step  # aligned buckets; the last one is open
    budgets, em = await asyncio.gather(burn_down(runtime, views, hours, now), emergency(runtime, now))
    if w.step < rollup.HOUR:
        rows, (p50, p95), top = await asyncio.gather(
            views.series(since, now + 1, w.step),
            views.percentiles(since, now + 1),
            top_spenders(runtime, since, now + 1),
        )
        cols = filled(rows, since, w)
    else:
        span = await hours.hours_between(views, since, now + 1)
        cols = rollup.series(span, since, w.step, w.seconds // w.step)
        p50, p95 = rollup.percentiles(span)
        top = _top_from(span)
    return {
        "window": w,
        "series": cols,
        "totals": totals(cols, p50, p95),
        "overhead": overhead(tail, since),
        "top": top,
        "budgets": budgets,
        "emergency": em,
    }


async def live_stats(views: LedgerViews, tail: Tail) -> dict[str, Any]:
    """The last hour's headline figures, pushed to open Overview pages."""
    w = WINDOWS["hour"]
    now = time.time()
    since = float(int((now - w.seconds) // w.step) * w.step) + w.step
    rows, (p50, p95) = await asyncio.gather(
        views.series(since, now + 1, w.step), views.percentiles(since, now + 1)
    )
    cols = filled(rows, since, w)
    t = totals(cols, p50, p95)
    t["overhead_p50_ms"] = overhead(tail, since)["p50_ms"]
    t["series"] = cols
    return t
