"""Builds the access-control stages from the settings: key auth (cache + service), rate limiter, usage
ledger and reports. The lifespan calls ``Access.build`` / ``start`` / ``aclose``; the gateway gets the stages.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from tollhouse.access.alerts import BudgetAlerter
from tollhouse.access.auth import KeyAuth
from tollhouse.access.budget import BudgetLimiter
from tollhouse.access.emergency import EmergencyMode
from tollhouse.access.keys import KeyCache, KeyService, build_key_store
from tollhouse.access.limits import Background, RateLimiter
from tollhouse.ledger.reports import Reports
from tollhouse.ledger.usage import CostLedger, UsageLedger, build_ledger_store
from tollhouse.pipeline.admission import Admission, Limiter
from tollhouse.pipeline.ledger import Ledger
from tollhouse.pricing import PriceBook
from tollhouse.settings import Settings
from tollhouse.stores.base import LedgerStore, RateLimitStore
from tollhouse.stores.memory import MemoryBudgetStore, MemoryRateLimitStore


@dataclass(slots=True)
class Access:
    auth: KeyAuth
    keys: KeyService
    cache: KeyCache
    rate: RateLimiter
    budget: BudgetLimiter
    emergency: EmergencyMode | None
    limiter: Admission
    ledger: Ledger
    reports: Reports
    prices: PriceBook

    @classmethod
    def build(cls, settings: Settings, admin_key: str | None) -> Access:
        store = build_key_store(settings.keys)
        cache = KeyCache(store, settings.keys)
        prices = PriceBook(settings.all_models())
        ledger_store: LedgerStore | None = None
        ledger: Ledger = CostLedger(prices)
        if settings.ledger.enabled:
            ledger_store = build_ledger_store(settings.ledger)
            ledger = UsageLedger(settings.ledger, ledger_store, prices)
        limits = settings.limits
        rl_store: RateLimitStore
        fallback: RateLimitStore | None = None
        if limits.backend == "redis":
            from tollhouse.stores.redis import RedisRateLimitStore

            rl_store = RedisRateLimitStore(settings.redis.url, settings.redis.prefix + "rl:")
            fallback = MemoryRateLimitStore()
        else:
            rl_store = MemoryRateLimitStore()
        remote = limits.backend == "redis"
        rate = RateLimiter(rl_store, limits.on_store_error, fallback, Background() if remote else None)
        budget = _budget_limiter(settings, prices)
        concurrent = remote or settings.budgets.backend == "redis"
        limiters: list[Limiter] = [rate, budget]
        emergency = None
        if settings.emergency.daily_spend_usd is not None:
            emergency = EmergencyMode(settings.emergency, budget.store, prices, budget.background)
            limiters.insert(0, emergency)
        return cls(
            auth=KeyAuth(cache, admin_key),
            keys=KeyService(store, cache),
            cache=cache,
            rate=rate,
            budget=budget,
            emergency=emergency,
            limiter=Admission(limiters, concurrent=concurrent),
            ledger=ledger,
            reports=Reports(ledger_store),
            prices=prices,
        )

    async def start(self) -> None:
        await self.keys.store.open()
        await self.cache.start()
        self.budget.alerter = BudgetAlerter(self.budget.cfg.alerts, self.budget.store)
        await self.budget.alerter.start()
        if self.emergency is not None:
            await self.emergency.start()
        if isinstance(self.ledger, UsageLedger):
            await self.ledger.start()

    async def aclose(self) -> None:
        """Everything but the ledger (the gateway closes its stages)."""
        await self.cache.aclose()
        with contextlib.suppress(Exception):
            await self.keys.store.aclose()
        with contextlib.suppress(Exception):
            await self.rate.aclose()
        if self.budget.alerter is not None:
            await self.budget.alerter.aclose()
        if self.emergency is not None:
            await self.emergency.aclose()
        with contextlib.suppress(Exception):
            await self.budget.aclose()


def _budget_limiter(settings: Settings, prices: PriceBook) -> BudgetLimiter:
    cfg = settings.budgets
    if cfg.backend == "redis":
        from tollhouse.stores.redis import RedisBudgetStore

        store = RedisBudgetStore(settings.redis.url, settings.redis.prefix)
        return BudgetLimiter(store, cfg, prices, fallback=MemoryBudgetStore(), background=Background())
    return BudgetLimiter(MemoryBudgetStore(), cfg, prices)
