"""Read-only views of the usage ledger for the dashboard: time series, latency percentiles, a searchable
request log, one request's records and guardrail decisions. Never on the request path.

Every query is bounded by ``ts`` (the ``ledger_ts`` index) or by ``LIMIT`` over that index, so a page costs
the rows of its window, not the whole ledger. The SQLite queries run in the ledger's own worker thread;
PostgreSQL computes percentiles itself (``percentile_cont``), SQLite hands back the window's latencies.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from tollhouse.stores.base import LedgerStore
from tollhouse.stores.postgres import PostgresLedgerStore
from tollhouse.stores.sql import PgPool, SqliteDB
from tollhouse.stores.sqlite import SqliteLedgerStore

SERIES_FIELDS = ("requests", "errors", "tokens", "cost_usd", "saved_usd", "cache_hits", "p50_ms", "p95_ms")


@dataclass(slots=True, frozen=True)
class Search:
    """Filters of the request log: ``text`` matches a request id, key id, user, team or model exactly;
    ``status`` is ``ok`` (< 400), ``error`` (>= 400) or None."""

    text: str | None = None
    status: str | None = None
    limit: int = 100
    before: float | None = None


class LedgerViews(Protocol):
    async def series(self, since: float, until: float, step: float) -> list[dict[str, Any]]:
        """One row per ``step``-second bucket that has records (``t``: the bucket's start), with
        ``SERIES_FIELDS``; buckets without records are left out."""
        ...

    async def percentiles(self, since: float, until: float) -> tuple[float | None, float | None]:
        """p50 and p95 of ``latency_ms`` over the window (None: no records)."""
        ...

    async def hourly(self, since: float, until: float) -> list[tuple[Any, ...]]:
        """Sums per UTC hour and (model, key_id, user, team): ``HOURLY_COLUMNS``."""
        ...

    async def latencies(self, since: float, until: float) -> list[tuple[float, float]]:
        """(ts, latency_ms) of every record of the window, unordered."""
        ...

    async def search(self, search: Search) -> list[dict[str, Any]]:
        """Newest first."""
        ...

    async def request(self, request_id: str) -> list[dict[str, Any]]:
        """Every record of one request id (ids chosen by callers may repeat), newest first."""
        ...

    async def guardrails(self, since: float, until: float) -> list[dict[str, Any]]:
        """``rule``, ``outcome``, ``count`` and the newest ``examples`` (request ids), most frequent first."""
        ...


def _series_sql(bucket: str, since: str, until: str, step: str) -> str:
    return (
        f"SELECT {bucket} AS b, COUNT(*) AS requests, "
        "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors, "
        "COALESCE(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)), 0) AS tokens, "
        "COALESCE(SUM(cost_usd), 0) AS cost_usd, COALESCE(SUM(saved_usd), 0) AS saved_usd, "
        "SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END) AS cache_hits "
        f"FROM ledger WHERE ts >= {since} AND ts < {until} GROUP BY b ORDER BY b"
    )


HOURLY_COLUMNS = (
    "hour", "model", "key_id", "user", "team",
    "requests", "errors", "tokens", "cost_usd", "saved_usd", "cache_hits",
)  # fmt: skip


def _hourly_sql(hour: str, since: str, until: str) -> str:
    return (
        f'SELECT {hour} AS hour, model, key_id, "user", team, COUNT(*), '
        "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), "
        "COALESCE(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)), 0), "
        "COALESCE(SUM(cost_usd), 0), COALESCE(SUM(saved_usd), 0), "
        "SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END) "
        f'FROM ledger WHERE ts >= {since} AND ts < {until} GROUP BY hour, model, key_id, "user", team'
    )


def _search_sql(search: Search, mark: Any) -> tuple[str, list[Any]]:
    conds: list[str] = []
    args: list[Any] = []
    if search.before is not None:
        args.append(search.before)
        conds.append(f"ts < {mark(len(args))}")
    if search.text:
        args.append(search.text)
        m = mark(len(args))
        conds.append(
            f'(request_id = {m} OR key_id = {m} OR "user" = {m} OR team = {m} OR model = {m} '
            f"OR model_served = {m})"
        )
    if search.status == "ok":
        conds.append("status < 400")
    elif search.status == "error":
        conds.append("status >= 400")
    where = (" WHERE " + " AND ".join(conds)) if conds else ""
    args.append(max(1, min(search.limit, 1000)))
    return f"SELECT * FROM ledger{where} ORDER BY ts DESC LIMIT {mark(len(args))}", args


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (what PostgreSQL's ``percentile_cont`` does)."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _guardrail_rows(rows: list[tuple[str | None, str]]) -> list[dict[str, Any]]:
    counts: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], list[str]] = {}
    for events, request_id in rows:
        try:
            parsed = json.loads(events or "[]")
        except ValueError:
            continue
        for item in parsed:
            if not isinstance(item, list) or len(item) != 2:
                continue
            k = (str(item[0]), str(item[1]))
            counts[k] += 1
            ex = examples.setdefault(k, [])
            if len(ex) < 3 and request_id not in ex:
                ex.append(request_id)
    return [
        {"rule": r, "outcome": o, "count": n, "examples": examples[(r, o)]}
        for (r, o), n in counts.most_common()
    ]


def _numbers(row: dict[str, Any]) -> dict[str, Any]:
    for f in ("cost_usd", "saved_usd"):
        row[f] = float(row[f] or 0)
    return row


class SqliteLedgerViews:
    def __init__(self, db: SqliteDB) -> None:
        self._db = db

    async def series(self, since: float, until: float, step: float) -> list[dict[str, Any]]:
        bucket = "CAST((ts - ?) / ? AS INTEGER)"
        sql = _series_sql(bucket, "?", "?", "?")
        lat = f"SELECT {bucket} AS b, latency_ms FROM ledger WHERE ts >= ? AND ts < ? ORDER BY b, latency_ms"

        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = {r["b"]: _numbers(dict(r)) for r in conn.execute(sql, (since, step, since, until))}
            by: dict[int, list[float]] = {}
            for b, ms in conn.execute(lat, (since, step, since, until)):
                by.setdefault(b, []).append(float(ms or 0))
            out = []
            for b, r in rows.items():
                values = by.get(b, [])
                r["p50_ms"], r["p95_ms"] = percentile(values, 0.5), percentile(values, 0.95)
                r["t"] = since + b * step
                del r["b"]
                out.append(r)
            return out

        return await self._db.run(run)

    async def percentiles(self, since: float, until: float) -> tuple[float | None, float | None]:
        sql = "SELECT latency_ms FROM ledger WHERE ts >= ? AND ts < ? ORDER BY latency_ms"

        def run(conn: sqlite3.Connection) -> tuple[float | None, float | None]:
            values = [float(r[0] or 0) for r in conn.execute(sql, (since, until))]
            return percentile(values, 0.5), percentile(values, 0.95)

        return await self._db.run(run)

    async def hourly(self, since: float, until: float) -> list[tuple[Any, ...]]:
        sql = _hourly_sql("CAST(ts / 3600 AS INTEGER) * 3600", "?", "?")

        def run(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(sql, (since, until))]

        return await self._db.run(run)

    async def latencies(self, since: float, until: float) -> list[tuple[float, float]]:
        sql = "SELECT ts, latency_ms FROM ledger WHERE ts >= ? AND ts < ?"

        def run(conn: sqlite3.Connection) -> list[tuple[float, float]]:
            return [(r[0], r[1] or 0.0) for r in conn.execute(sql, (since, until))]

        return await self._db.run(run)

    async def search(self, search: Search) -> list[dict[str, Any]]:
        sql, args = _search_sql(search, lambda i: f"?{i}")

        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return [dict(r) for r in conn.execute(sql, args)]

        return await self._db.run(run)

    async def request(self, request_id: str) -> list[dict[str, Any]]:
        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute("SELECT * FROM ledger WHERE request_id = ? ORDER BY ts DESC", (request_id,))
            return [dict(r) for r in rows]

        return await self._db.run(run)

    async def guardrails(self, since: float, until: float) -> list[dict[str, Any]]:
        sql = (
            "SELECT guardrails, request_id FROM ledger WHERE ts >= ? AND ts < ? "
            "AND guardrails IS NOT NULL ORDER BY ts DESC"
        )

        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return _guardrail_rows([(r[0], r[1]) for r in conn.execute(sql, (since, until))])

        return await self._db.run(run)


class PostgresLedgerViews:
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def series(self, since: float, until: float, step: float) -> list[dict[str, Any]]:
        bucket = "FLOOR((ts - $1) / $3)::BIGINT"
        sql = _series_sql(bucket, "$1", "$2", "$3")
        lat = (
            f"SELECT {bucket} AS b, percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50, "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95 "
            "FROM ledger WHERE ts >= $1 AND ts < $2 GROUP BY b"
        )
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, since, until, step)
            pct = {r["b"]: (r["p50"], r["p95"]) for r in await conn.fetch(lat, since, until, step)}
        out = []
        for r in rows:
            d = _numbers(dict(r))
            b = d.pop("b")
            d["p50_ms"], d["p95_ms"] = pct.get(b, (None, None))
            d["t"] = since + b * step
            out.append(d)
        return out

    async def percentiles(self, since: float, until: float) -> tuple[float | None, float | None]:
        sql = (
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms), "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) FROM ledger WHERE ts >= $1 AND ts < $2"
        )
        async with self._pool.acquire() as conn:
            r = await conn.fetchrow(sql, since, until)
        return r[0], r[1]

    async def hourly(self, since: float, until: float) -> list[tuple[Any, ...]]:
        sql = _hourly_sql("(FLOOR(ts / 3600) * 3600)::BIGINT", "$1", "$2")
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, since, until)
        return [tuple(r) for r in rows]

    async def latencies(self, since: float, until: float) -> list[tuple[float, float]]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT ts, latency_ms FROM ledger WHERE ts >= $1 AND ts < $2", since, until
            )
        return [(r[0], r[1] or 0.0) for r in rows]

    async def search(self, search: Search) -> list[dict[str, Any]]:
        sql, args = _search_sql(search, lambda i: f"${i}")
        async with self._pool.acquire() as conn:
            return [dict(r) for r in await conn.fetch(sql, *args)]

    async def request(self, request_id: str) -> list[dict[str, Any]]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM ledger WHERE request_id = $1 ORDER BY ts DESC", request_id)
        return [dict(r) for r in rows]

    async def guardrails(self, since: float, until: float) -> list[dict[str, Any]]:
        sql = (
            "SELECT guardrails, request_id FROM ledger WHERE ts >= $1 AND ts < $2 "
            "AND guardrails IS NOT NULL ORDER BY ts DESC"
        )
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, since, until)
        return _guardrail_rows([(r[0], r[1]) for r in rows])


def ledger_views(store: LedgerStore | None) -> LedgerViews | None:
    """The views over the ledger's own connection (None: the ledger is off or kept elsewhere)."""
    if isinstance(store, SqliteLedgerStore):
        return SqliteLedgerViews(store._db)
    if isinstance(store, PostgresLedgerStore):
        return PostgresLedgerViews(store._pool)
    return None
