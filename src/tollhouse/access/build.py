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
from tollhouse.access.keys import KeyCache, KeyService
from tollhouse.access.limits import Background, RateLimiter
from tollhouse.ledger.reports import Reports
from tollhouse.ledger.usage import CostLedger, UsageLedger
from tollhouse.pipeline.admission import Admission, Limiter
from tollhouse.pipeline.ledger import Ledger
from tollhouse.pricing import PriceBook
from tollhouse.settings import Settings
from tollhouse.stores import build as stores
from tollhouse.stores.base import LedgerStore


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
        store = stores.key_store(settings.keys)
        cache = KeyCache(store, settings.keys)
        prices = PriceBook(settings.all_models())
        ledger_store: LedgerStore | None = None
        ledger: Ledger = CostLedger(prices)
        if settings.ledger.enabled:
            ledger_store = stores.ledger_store(settings.ledger)
            ledger = UsageLedger(settings.ledger, ledger_store, prices)
        rl = stores.rate_limit_store(settings.limits, settings.redis)
        background = Background() if rl.shared else None
        rate = RateLimiter(rl.store, settings.limits.on_store_error, rl.fallback, background)
        spend = stores.budget_store(settings.budgets, settings.redis)
        background = Background() if spend.shared else None
        budget = BudgetLimiter(spend.store, settings.budgets, prices, spend.fallback, background)
        concurrent = rl.shared or spend.shared
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
