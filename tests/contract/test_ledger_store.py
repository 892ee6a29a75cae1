"""``LedgerStore`` contract, over every backend (memory, SQLite, real PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tollhouse.stores.base import LedgerRecord, LedgerStore
from tollhouse.stores.memory import MemoryLedgerStore
from tollhouse.stores.postgres import PostgresLedgerStore
from tollhouse.stores.sqlite import SqliteLedgerStore


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LedgerStore]:
    s: LedgerStore
    if request.param == "memory":
        s = MemoryLedgerStore()
    elif request.param == "sqlite":
        s = SqliteLedgerStore(str(tmp_path / "ledger.db"))
    else:
        s = PostgresLedgerStore(request.getfixturevalue("pg_dsn"))
    await s.open()
    yield s
    await s.aclose()


DAY1 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def rec(i: int, **kw: Any) -> LedgerRecord:
    base: dict[str, Any] = dict(
        id=f"r{i}",
        request_id=f"req{i}",
        ts=DAY1 + i,
        endpoint="chat",
        key_id="k1",
        user="alice",
        team="t1",
        model="m1",
        model_served="m1-up",
        deployment="m1",
        prompt_tokens=10,
        completion_tokens=5,
        cached_tokens=None,
        cost_usd=0.5,
        latency_ms=12.5,
        ttft_ms=None,
        status=200,
        error_class=None,
        stream=False,
        cache_hit=False,
        guardrails=None,
        prompt_version=None,
    )
    base.update(kw)
    return LedgerRecord(**base)


async def test_write_is_idempotent_on_record_id(store: LedgerStore) -> None:
    await store.write([rec(1), rec(2)])
    await store.write([rec(2), rec(3)])  # a replay of r2
    assert await store.count() == 3


async def test_usage_aggregates(store: LedgerStore) -> None:
    await store.write(
        [
            rec(1),
            rec(2, user="bob", key_id="k2", cost_usd=1.25, cache_hit=True),
            rec(
                3,
                status=502,
                error_class="UpstreamError",
                prompt_tokens=None,
                completion_tokens=None,
                cost_usd=None,
            ),
            rec(4, cost_usd=None, prompt_tokens=None, completion_tokens=None),  # usage unknown
            rec(5, model="m2", ts=DAY1 + 86400 + 5, cost_usd=2.0),
            rec(6, ts=DAY1 - 10),  # outside the window
        ]
    )
    rows = {r["grp"]: r for r in await store.usage("model", DAY1, DAY1 + 2 * 86400)}
    assert set(rows) == {"m1", "m2"}
    m1 = rows["m1"]
    assert m1["requests"] == 4 and m1["errors"] == 1 and m1["cache_hits"] == 1
    assert m1["prompt_tokens"] == 20 and m1["completion_tokens"] == 10
    assert m1["cost_usd"] == pytest.approx(1.75) and m1["unknown_cost"] == 1
    days = {r["grp"]: r["requests"] for r in await store.usage("day", DAY1, DAY1 + 2 * 86400)}
    assert days == {"2026-01-01": 4, "2026-01-02": 1}
    users = {r["grp"]: r["cost_usd"] for r in await store.usage("user", DAY1, DAY1 + 2 * 86400)}
    assert users == {"alice": pytest.approx(2.5), "bob": pytest.approx(1.25)}
    keys = await store.usage("key_id", DAY1, DAY1 + 2 * 86400)
    assert [r["grp"] for r in keys] == ["k1", "k2"]  # by cost, highest first
    assert await store.usage("team", time.time(), time.time() + 1) == []


async def test_purge_by_time(store: LedgerStore) -> None:
    await store.write([rec(1), rec(2), rec(3, ts=DAY1 + 86400)])
    assert await store.purge(DAY1 + 2.5) == 2
    assert await store.count() == 1
    assert await store.purge(DAY1) == 0
