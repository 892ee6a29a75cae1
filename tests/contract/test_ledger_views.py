"""The dashboard's read-only ledger views, on SQLite and real PostgreSQL: the same records give the same
series, percentiles, search results and guardrail counts; the hourly rollup agrees with direct queries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tollhouse.stores.base import LedgerRecord, LedgerStore
from tollhouse.stores.ledger_views import LedgerViews, Search, ledger_views, percentile
from tollhouse.stores.postgres import PostgresLedgerStore
from tollhouse.stores.sqlite import SqliteLedgerStore
from tollhouse.ui import rollup
from tollhouse.ui.rollup import Rollup

H0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def rec(i: int, ts: float, **kw: Any) -> LedgerRecord:
    base: dict[str, Any] = dict(
        id=f"r{i}",
        request_id=f"req{i}",
        ts=ts,
        endpoint="chat",
        key_id="k1" if i % 2 else "k2",
        user="alice" if i % 3 else "bob",
        team="t1",
        model="m1" if i % 4 else "m2",
        model_served="m1",
        deployment="m1",
        prompt_tokens=10,
        completion_tokens=5,
        cached_tokens=None,
        cost_usd=0.25,
        latency_ms=float(10 * (i + 1)),
        ttft_ms=None,
        status=200 if i % 5 else 502,
        error_class=None,
        stream=False,
        cache_hit=i % 7 == 0,
        guardrails=json.dumps([["pii", "redact"]]) if i % 6 == 0 else None,
        prompt_version=None,
        cache_status="hit" if i % 7 == 0 else "miss",
        saved_usd=0.1 if i % 7 == 0 else None,
    )
    base.update(kw)
    return LedgerRecord(**base)


# 20 records in hour 0 (every 3 minutes), 10 in hour 2, none in hour 1.
RECORDS = [rec(i, H0 + 180 * i) for i in range(20)] + [rec(20 + i, H0 + 7200 + 60 * i) for i in range(10)]


@pytest.fixture(params=["sqlite", "postgres"])
async def views(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LedgerViews]:
    store: LedgerStore
    if request.param == "sqlite":
        store = SqliteLedgerStore(str(tmp_path / "ledger.db"))
    else:
        store = PostgresLedgerStore(request.getfixturevalue("pg_dsn"))
    await store.open()
    await store.write(RECORDS)
    v = ledger_views(store)
    assert v is not None
    yield v
    await store.aclose()


async def test_series_buckets_records_by_step(views: LedgerViews) -> None:
    rows = await views.series(H0, H0 + 3 * 3600, 3600)
    assert [r["t"] for r in rows] == [H0, H0 + 7200]  # the empty hour is left out
    first, second = rows
    assert first["requests"] == 20 and second["requests"] == 10
    assert first["errors"] == 4  # i = 0, 5, 10, 15
    assert first["tokens"] == 20 * 15
    assert first["cost_usd"] == pytest.approx(5.0)
    assert first["cache_hits"] == 3  # i = 0, 7, 14
    assert first["saved_usd"] == pytest.approx(0.3)
    latencies = sorted(float(10 * (i + 1)) for i in range(20))
    assert first["p50_ms"] == pytest.approx(percentile(latencies, 0.5))
    assert first["p95_ms"] == pytest.approx(percentile(latencies, 0.95))


async def test_percentiles_over_a_window(views: LedgerViews) -> None:
    p50, p95 = await views.percentiles(H0, H0 + 3 * 3600)
    values = sorted(float(10 * (i + 1)) for i in range(30))
    assert p50 == pytest.approx(percentile(values, 0.5))
    assert p95 == pytest.approx(percentile(values, 0.95))
    assert await views.percentiles(H0 + 3600, H0 + 7200) == (None, None)


async def test_search_filters_newest_first(views: LedgerViews) -> None:
    everything = await views.search(Search(limit=1000))
    assert [r["request_id"] for r in everything] == [
        r.request_id for r in sorted(RECORDS, key=lambda r: -r.ts)
    ]
    assert [r["request_id"] for r in await views.search(Search(text="req3"))] == ["req3"]
    bob = await views.search(Search(text="bob"))
    assert {r["user"] for r in bob} == {"bob"} and len(bob) == 10  # i % 3 == 0
    errors = await views.search(Search(status="error"))
    assert all(r["status"] >= 400 for r in errors) and len(errors) == 6
    assert len(await views.search(Search(limit=3))) == 3
    older = await views.search(Search(before=H0 + 7200))
    assert all(r["ts"] < H0 + 7200 for r in older) and len(older) == 20


async def test_one_request_and_guardrails(views: LedgerViews) -> None:
    [one] = await views.request("req7")
    assert one["key_id"] == "k1" and one["cache_status"] == "hit"
    assert await views.request("nope") == []
    [pii] = await views.guardrails(H0, H0 + 3 * 3600)
    assert pii["rule"] == "pii" and pii["outcome"] == "redact"
    assert pii["count"] == 5  # i = 0, 6, 12, 18, 24
    assert pii["examples"] == ["req24", "req18", "req12"]  # newest first, three at most


async def test_hourly_rollup_agrees_with_direct_queries(views: LedgerViews) -> None:
    hours = await Rollup().hours_between(views, H0, H0 + 3 * 3600)
    assert sorted(hours) == [H0, H0 + 3600, H0 + 7200]
    cols = rollup.series(hours, H0, 3600, 3)
    direct = {r["t"]: r for r in await views.series(H0, H0 + 3 * 3600, 3600)}
    for i, t in enumerate(cols["t"]):
        d = direct.get(t)
        assert cols["requests"][i] == (d["requests"] if d else 0)
        assert cols["cost_usd"][i] == pytest.approx(d["cost_usd"] if d else 0.0)
        if d:
            # Histogram percentiles: within the 5 % bin width of the exact value.
            assert cols["p95_ms"][i] == pytest.approx(d["p95_ms"], rel=0.05)
    by_model = rollup.by(hours, "model")
    assert by_model["m2"]["requests"] == 8  # i % 4 == 0 over 30 records
    assert sum(v["requests"] for v in rollup.by(hours, "key_id").values()) == 30
    p50, _ = rollup.percentiles(hours)
    exact, _ = await views.percentiles(H0, H0 + 3 * 3600)
    assert p50 == pytest.approx(exact, rel=0.05)
