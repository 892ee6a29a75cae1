"""Pre-computed hourly aggregates of the ledger, so the 24-hour and 30-day views and the budget burn-down
cost a few thousand additions instead of a scan of every record.

A closed UTC hour (ended more than ``SETTLE_S`` ago: past the ledger's flush) is read once — sums per
(model, key, user, team) and a latency histogram — and kept in memory; the open hour is always read live.
Hours of the last day are read again every ``RECHECK_S`` so records that arrive late (a journal replayed
after a database outage) are counted within minutes. Percentiles over hours come from the merged
histograms: log-spaced bins 5 % wide, so a p95 is within 2.5 % of the exact value.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tollhouse.stores.ledger_views import LedgerViews

HOUR = 3600
SETTLE_S = 120.0
RECHECK_S = 300.0
KEEP_S = 31 * 86400
BIN = math.log(1.05)
SUMS = ("requests", "errors", "tokens", "cost_usd", "saved_usd", "cache_hits")
DIMS = {"model": 0, "key_id": 1, "user": 2, "team": 3}


def latency_bin(ms: float) -> int:
    return int(math.log(max(ms, 0.01)) / BIN)


def bin_value(b: int) -> float:
    return math.exp((b + 0.5) * BIN)


def histogram_percentile(hist: Counter[int], q: float) -> float | None:
    n = sum(hist.values())
    if not n:
        return None
    rank = q * (n - 1)
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen > rank:
            return bin_value(b)
    return bin_value(max(hist))


@dataclass(slots=True)
class Hour:
    rows: list[tuple[Any, ...]] = field(default_factory=list)  # (model, key, user, team, *SUMS)
    hist: Counter[int] = field(default_factory=Counter)
    read_at: float = 0.0

    def totals(self) -> list[float]:
        out = [0.0] * len(SUMS)
        for r in self.rows:
            for i, v in enumerate(r[4:]):
                out[i] += v or 0
        return out


class Rollup:
    def __init__(self) -> None:
        self.hours: dict[int, Hour] = {}
        self._lock = asyncio.Lock()

    async def hours_between(self, views: LedgerViews, since: float, until: float) -> dict[int, Hour]:
        """Every hour overlapping ``[since, until)`` (``since`` is rounded down to its hour), the open
        one read afresh."""
        now = time.time()
        first = int(since // HOUR) * HOUR
        last = int((until - 1e-6) // HOUR) * HOUR
        closed_before = now - SETTLE_S
        async with self._lock:
            stale = [
                h
                for h in range(first, last + 1, HOUR)
                if h + HOUR > closed_before
                or h not in self.hours
                or (h + HOUR > now - 86400 and now - self.hours[h].read_at > RECHECK_S)
            ]
            for h in [h for h in self.hours if h < now - KEEP_S and not first <= h <= last]:
                del self.hours[h]
            if stale:
                await self._read(views, min(stale), max(stale) + HOUR, now)
            return {h: self.hours.get(h) or Hour(read_at=now) for h in range(first, last + 1, HOUR)}

    async def _read(self, views: LedgerViews, start: float, end: float, now: float) -> None:
        rows, lats = await asyncio.gather(views.hourly(start, end), views.latencies(start, end))
        fresh: dict[int, Hour] = {h: Hour(read_at=now) for h in range(int(start), int(end), HOUR)}
        for r in rows:
            fresh[int(r[0])].rows.append(tuple(r[1:]))
        for ts, ms in lats:
            fresh[int(ts // HOUR) * HOUR].hist[latency_bin(ms)] += 1
        self.hours.update(fresh)


def series(hours: dict[int, Hour], since: float, step: int, n: int) -> dict[str, list[Any]]:
    """Column arrays of ``n`` buckets of ``step`` seconds (a multiple of an hour) from ``since``."""
    cols: dict[str, list[Any]] = {k: [] for k in ("t", *SUMS, "p50_ms", "p95_ms")}
    for i in range(n):
        start = since + i * step
        sums = [0.0] * len(SUMS)
        hist: Counter[int] = Counter()
        for h in range(int(start), int(start + step), HOUR):
            hour = hours.get(h)
            if hour is None:
                continue
            for j, v in enumerate(hour.totals()):
                sums[j] += v
            hist.update(hour.hist)
        cols["t"].append(start)
        for j, k in enumerate(SUMS):
            cols[k].append(sums[j] if k in ("cost_usd", "saved_usd") else int(sums[j]))
        cols["p50_ms"].append(histogram_percentile(hist, 0.5))
        cols["p95_ms"].append(histogram_percentile(hist, 0.95))
    return cols


def percentiles(hours: dict[int, Hour]) -> tuple[float | None, float | None]:
    hist: Counter[int] = Counter()
    for h in hours.values():
        hist.update(h.hist)
    return histogram_percentile(hist, 0.5), histogram_percentile(hist, 0.95)


def by(hours: dict[int, Hour], dim: str, since: float = 0.0) -> dict[str | None, dict[str, float]]:
    """Sums per value of ``dim`` over the hours starting at or after ``since``."""
    i = DIMS[dim]
    out: dict[str | None, dict[str, float]] = {}
    for h, hour in hours.items():
        if h < since:
            continue
        for r in hour.rows:
            acc = out.setdefault(r[i], dict.fromkeys(SUMS, 0.0))
            for j, k in enumerate(SUMS):
                acc[k] += r[4 + j] or 0
    return out
