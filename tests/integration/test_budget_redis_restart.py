"""Issue 12, defect 3: a Redis without persistence restarts and the day's budget spend must not start again at
$0 — the lost counters are rebuilt from the ledger. Runs its own throwaway ``redis-server`` on a free port
(never the shared one) and restarts it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from tests.conftest import mock_settings
from tests.support.servers import ThrowawayRedis

from tollhouse.errors import TollhouseError
from tollhouse.operations import CHAT
from tollhouse.runtime import Runtime
from tollhouse.settings import Settings
from tollhouse.types import ChatRequest, KeyLimits, Message, Principal, RequestContext

pytestmark = pytest.mark.slow
REPLY = "one two three four five six seven eight nine ten"  # the whole max_tokens: $1 each, as reserved


def _settings(tmp_path: Path, redis_url: str) -> Settings:
    base = mock_settings(
        priced={"reply": REPLY, "pricing": {"input_per_1m": 0, "output_per_1m": 100_000}}
    ).model_dump()
    base["budgets"] = {"backend": "redis"}
    base["redis"] = {"url": redis_url, "prefix": "th:"}
    base["ledger"] = {
        "enabled": True,
        "sqlite_path": str(tmp_path / "ledger.db"),
        "journal_dir": str(tmp_path / "journal"),
        "flush_interval_s": 0.05,
    }
    return Settings.model_validate(base)


async def _fire(rt: Runtime, n: int) -> list[int]:
    """``n`` concurrent $1 requests on one key with a $29 daily budget: their statuses."""
    principal = Principal(key_id="k29", anonymous=False, limits=KeyLimits(daily_usd=29))

    async def one(i: int) -> int:
        ctx = RequestContext(request_id=f"r{i}", principal=principal)
        req = ChatRequest(model="priced", messages=[Message("user", "hi")], max_tokens=10)
        try:
            await rt.gateway.handle(ctx, CHAT, req)
        except TollhouseError as exc:
            return exc.status
        return 200

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _recorded(rt: Runtime, n: int) -> None:
    assert rt.reports.store is not None
    deadline = time.monotonic() + 5
    while await rt.reports.store.count() < n:
        assert time.monotonic() < deadline, "the ledger did not record the requests"
        await asyncio.sleep(0.02)


async def test_a_restarted_redis_does_not_reset_the_days_spend(
    throwaway_redis: ThrowawayRedis, tmp_path: Path
) -> None:
    async with Runtime.open(_settings(tmp_path, throwaway_redis.url)) as rt:
        assert await _fire(rt, 29) == [200] * 29  # the budget fits 29
        await _recorded(rt, 29)
        throwaway_redis.stop()
        throwaway_redis.start()  # empty: every counter is gone
        # The pool's connections died with the server: the first commands on them may answer 503 until
        # they reconnect. Never a 200: the day's spend is rebuilt before anything is admitted.
        deadline = time.monotonic() + 10
        while (first := await _fire(rt, 1)) != [429]:
            assert first == [503] and time.monotonic() < deadline, first
        statuses = await _fire(rt, 29)
        # Rebuilt from the ledger: the day's $29 are spent, nothing more is admitted.
        # budget_exceeded; a command on another pooled connection that died with the server may still 503.
        assert set(statuses) <= {429, 503} and statuses.count(429) >= 15, statuses
        costs = await rt.reports.costs(0, time.time() + 1)
        assert costs["total_cost_usd"] == pytest.approx(29.0)
