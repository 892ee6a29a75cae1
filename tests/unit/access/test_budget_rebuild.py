"""Lost budget counters (a restarted process or Redis, an eviction) are rebuilt from the ledger before
anything is admitted against them; a ledger that cannot answer follows ``budgets.on_store_error``."""

from __future__ import annotations

import asyncio
import calendar
import logging
import time
import uuid
from pathlib import Path

import pytest

from tollhouse.access.budget import BudgetLimiter
from tollhouse.access.emergency import EmergencyMode
from tollhouse.config.access import BudgetsSettings, EmergencySettings
from tollhouse.errors import BudgetExceeded, Overloaded
from tollhouse.pricing import PriceBook
from tollhouse.settings import MockModel
from tollhouse.stores.base import Counter, LedgerRecord
from tollhouse.stores.memory import MemoryBudgetStore, MemoryLedgerStore
from tollhouse.stores.sqlite import SqliteLedgerStore
from tollhouse.types import Estimate, KeyLimits, Principal, RequestContext, Usage

PRICE = {"input_per_1m": 0, "output_per_1m": 1_000_000}  # $1 per output token
PRICES = PriceBook([MockModel(name="m", provider="mock", pricing=PRICE)])  # type: ignore[arg-type]
ONE_DOLLAR = Estimate(0, 1)


def record(cost: float, ts: float | None = None, key: str = "k", user: str | None = "u") -> LedgerRecord:
    return LedgerRecord(
        id=uuid.uuid4().hex, request_id="r", ts=time.time() if ts is None else ts, endpoint="chat",
        key_id=key, user=user, team=None, model="m", model_served="m", deployment="m", prompt_tokens=0,
        completion_tokens=1, cached_tokens=None, cost_usd=cost, latency_ms=1.0, ttft_ms=None, status=200,
        error_class=None, stream=False, cache_hit=False, guardrails=None, prompt_version=None,
    )  # fmt: skip


def ctx(daily: float | None = None, monthly: float | None = None, user: str | None = None) -> RequestContext:
    limits = KeyLimits(daily_usd=daily, monthly_usd=monthly)
    principal = Principal(key_id="k", user=user, anonymous=False, limits=limits)
    return RequestContext(request_id="r", principal=principal, deployment="m", attempts=1)


async def admitted(limiter: BudgetLimiter, context: RequestContext, n: int) -> int:
    """How many of ``n`` one-dollar requests (each spending its dollar) are admitted."""
    ok = 0
    for _ in range(n):
        try:
            r = await limiter.admit(context, ONE_DOLLAR)
        except BudgetExceeded:
            continue
        await r.settle(Usage(0, 1))
        ok += 1
    return ok


async def test_a_restarted_process_rebuilds_the_day_from_the_ledger() -> None:
    ledger = MemoryLedgerStore()
    await ledger.write([record(1.0) for _ in range(7)])
    await ledger.write([record(5.0, key="other")])  # another key's spend is not ours
    limiter = BudgetLimiter(MemoryBudgetStore(), BudgetsSettings(), PRICES)
    limiter.ledger = ledger
    assert await admitted(limiter, ctx(daily=10), 5) == 3  # $7 recorded before the restart, $10 budget


async def test_each_budget_is_rebuilt_from_its_own_scope_and_period() -> None:
    ledger = MemoryLedgerStore()
    t = time.gmtime()
    month_start = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, 0))
    await ledger.write([record(2.0), record(3.0, key="other")])  # today: the key's $2, the user's $5
    await ledger.write([record(100.0, ts=month_start - 1)])  # last month: in no current period
    cfg = BudgetsSettings.model_validate({"users": {"u": {"monthly_usd": 8}}})
    limiter = BudgetLimiter(MemoryBudgetStore(), cfg, PRICES)
    limiter.ledger = ledger
    # The key has $8 left today, the user $3 this month: the user's budget binds.
    assert await admitted(limiter, ctx(daily=10, user="u"), 5) == 3


async def test_an_unreachable_ledger_refuses_when_budgets_fail_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = BudgetLimiter(MemoryBudgetStore(), BudgetsSettings(), PRICES)
    limiter.ledger = SqliteLedgerStore(str(tmp_path / "never-opened.db"))  # down: not open
    with caplog.at_level(logging.WARNING, "tollhouse.budget"):
        for _ in range(3):
            with pytest.raises(Overloaded) as err:
                await limiter.admit(ctx(daily=10), ONE_DOLLAR)
            assert err.value.status == 503
    # The counter was not seeded with 0 (that would forget the day's spend): the next try rebuilds.
    day = time.strftime("%Y-%m-%d", time.gmtime())
    assert (await limiter.store.reserve([Counter(f"b:key:k:d:{day}", 10, 0, 60)])).missing == (0,)
    lines = [r for r in caplog.records if "usage ledger (budget rebuild) unavailable" in r.getMessage()]
    assert len(lines) == 1  # once per outage, with its cause
    assert getattr(lines[0], "cause", "")


async def test_an_unreachable_ledger_admits_on_the_fallback_when_budgets_fail_open(tmp_path: Path) -> None:
    cfg = BudgetsSettings(on_store_error="open")
    limiter = BudgetLimiter(MemoryBudgetStore(), cfg, PRICES, fallback=MemoryBudgetStore())
    limiter.ledger = SqliteLedgerStore(str(tmp_path / "never-opened.db"))
    assert await admitted(limiter, ctx(daily=3), 5) == 3  # the per-process fallback still bounds spend
    assert limiter.store_errors == 5


async def test_with_the_ledger_off_a_lost_counter_starts_again_at_zero() -> None:
    limiter = BudgetLimiter(MemoryBudgetStore(), BudgetsSettings(), PRICES)
    assert await admitted(limiter, ctx(daily=2), 5) == 2


async def test_emergency_mode_rebuilds_the_days_total_from_the_ledger() -> None:
    ledger = MemoryLedgerStore()
    await ledger.write([record(30.0, key="a"), record(25.0, key="b")])
    em = EmergencyMode(EmergencySettings(daily_spend_usd=50, model="m"), MemoryBudgetStore(), PRICES)
    await em.start()  # at start the ledger is not open yet: nothing is seeded
    assert not em.active
    em.ledger = ledger
    await em.check()
    assert em.active  # $55 recorded today by every key
    await em.aclose()


async def test_one_slow_ledger_read_serves_every_request_and_outlives_their_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tollhouse.access import budget

    class SlowLedger:
        def __init__(self) -> None:
            self.reads = 0
            self.answer = asyncio.Event()

        async def spent_usd(
            self, since: float, until: float, by: str | None = None, value: str | None = None
        ) -> float:
            self.reads += 1
            await self.answer.wait()
            return 7.0

    monkeypatch.setattr(budget, "REBUILD_TIMEOUT_S", 0.05)
    ledger = SlowLedger()
    limiter = BudgetLimiter(MemoryBudgetStore(), BudgetsSettings(), PRICES)
    limiter.ledger = ledger
    results = await asyncio.gather(
        *(limiter.admit(ctx(daily=10), ONE_DOLLAR) for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, Overloaded) for r in results)  # 503 while the ledger does not answer
    assert ledger.reads == 1  # one read for all of them, still running
    ledger.answer.set()
    await asyncio.sleep(0)
    assert await admitted(limiter, ctx(daily=10), 5) == 3  # seeded with the $7 the read found
    assert ledger.reads == 1
