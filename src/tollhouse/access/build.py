"""Builds the access-control stages from the settings: key auth (cache + service), rate limiter, budgets and
emergency mode. ``Access.build`` only constructs; ``open`` starts each part on the composition root's exit
stack, so the parts close in reverse order of opening, once. The ledger is not part of access control.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from tollhouse.access.alerts import BudgetAlerter
from tollhouse.access.auth import KeyAuth
from tollhouse.access.budget import BudgetLimiter
from tollhouse.access.emergency import EmergencyMode
from tollhouse.access.keys import KeyCache, KeyService
from tollhouse.access.limits import Background, RateLimiter
from tollhouse.pricing import PriceBook
from tollhouse.settings import Settings
from tollhouse.stores import build as stores

Limiter = EmergencyMode | RateLimiter | BudgetLimiter


@dataclass(slots=True)
class Access:
    auth: KeyAuth
    keys: KeyService
    cache: KeyCache
    rate: RateLimiter
    budget: BudgetLimiter
    emergency: EmergencyMode | None
    concurrent: bool  # a limiter's store is remote: admit through all of them at once (one round trip)

    @property
    def limiters(self) -> list[Limiter]:
        """Admission order: emergency mode (when configured), rate limits, budgets."""
        out: list[Limiter] = [self.rate, self.budget]
        if self.emergency is not None:
            out.insert(0, self.emergency)
        return out

    @classmethod
    def build(cls, settings: Settings, admin_key: str | None, prices: PriceBook) -> Access:
        store = stores.key_store(settings.keys)
        cache = KeyCache(store, settings.keys)
        rl = stores.rate_limit_store(settings.limits, settings.redis)
        background = Background() if rl.shared else None
        rate = RateLimiter(rl.store, settings.limits.on_store_error, rl.fallback, background)
        spend = stores.budget_store(settings.budgets, settings.redis)
        background = Background() if spend.shared else None
        budget = BudgetLimiter(spend.store, settings.budgets, prices, spend.fallback, background)
        emergency = None
        if settings.emergency.daily_spend_usd is not None:
            emergency = EmergencyMode(settings.emergency, budget.store, prices, budget.background)
        return cls(
            auth=KeyAuth(cache, admin_key),
            keys=KeyService(store, cache),
            cache=cache,
            rate=rate,
            budget=budget,
            emergency=emergency,
            concurrent=rl.shared or spend.shared,
        )

    async def open(self, stack: AsyncExitStack) -> None:
        """Start every part, each one's close pushed on ``stack`` before it starts (a part that fails half
        way is closed too). A limiter or the key store that fails to close does not stop the rest."""
        stack.push_async_callback(_quietly, self.rate.aclose)
        stack.push_async_callback(_quietly, self.budget.aclose)
        stack.push_async_callback(_quietly, self.keys.store.aclose)
        await self.keys.store.open()
        stack.push_async_callback(self.cache.aclose)
        await self.cache.start()
        # Built here, not in ``build``: the alerter needs a running event loop.
        self.budget.alerter = alerter = BudgetAlerter(self.budget.cfg.alerts, self.budget.store)
        stack.push_async_callback(alerter.aclose)
        await alerter.start()
        if self.emergency is not None:
            stack.push_async_callback(self.emergency.aclose)
            await self.emergency.start()


async def _quietly(close: Callable[[], Awaitable[None]]) -> None:
    with contextlib.suppress(Exception):
        await close()
