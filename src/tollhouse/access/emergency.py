"""Global emergency mode (``emergency:``): a spend circuit breaker for the whole gateway.

Every request's actual cost is added to one counter per UTC day in the budget store (coalesced off the
request path when the store is remote); a background task reads it every ``check_interval_s`` and flips
an in-memory flag, so admission costs no I/O. A missing counter (a new day, a restarted Redis or process)
is seeded from the ledger's spend of the day by the first charge or check that finds it. While on:
requests go to ``emergency.model`` (the gateway re-routes on ``Downgrade``) and prompts estimated above
``max_input_tokens`` are refused. Cached responses are served as always (the cache is consulted first).
"""

from __future__ import annotations

import asyncio
import calendar
import functools
import logging
import time

from tollhouse.access.budget import REBUILD_TIMEOUT_S, SpendRecord
from tollhouse.access.limits import Background
from tollhouse.config.access import EmergencySettings
from tollhouse.errors import Downgrade, InvalidRequest
from tollhouse.outage import Outage
from tollhouse.pricing import PriceBook
from tollhouse.stores.base import BudgetStore, Counter
from tollhouse.tasks import cancel, every
from tollhouse.types import Estimate, RequestContext, Reservation, Usage

log = logging.getLogger("tollhouse.emergency")
DAY_TTL = 2 * 86400
UNLIMITED = 1 << 62  # the day's total has no limit of its own: a threshold is read by ``check``


def _day_key() -> str:
    return "b:global:d:" + time.strftime("%Y-%m-%d", time.gmtime())


def _day_bounds(key: str) -> tuple[float, float]:
    start = calendar.timegm(time.strptime(key.rsplit(":", 1)[1], "%Y-%m-%d"))
    return start, start + 86400.0


class _Charge:
    __slots__ = ("_ctx", "_em")

    def __init__(self, em: EmergencyMode, ctx: RequestContext) -> None:
        self._em = em
        self._ctx = ctx

    async def settle(self, usage: Usage | None) -> None:
        if usage is None:
            return
        micros = round(self._em.prices.cost(self._ctx.deployment, usage) * 1_000_000)
        if micros:
            await self._em.charge(micros)


class EmergencyMode:
    def __init__(
        self,
        cfg: EmergencySettings,
        store: BudgetStore,
        prices: PriceBook,
        background: Background | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.prices = prices
        self.background = background
        self.active = False
        self.ledger: SpendRecord | None = None  # set by the runtime when the ledger is on
        self._task: asyncio.Task[None] | None = None
        self.outage = Outage("emergency spend counter store", log, "the day's spend is not counted meanwhile")
        self._ledger_outage = Outage(
            "usage ledger (emergency spend rebuild)",
            log,
            "the day's spend cannot be rebuilt until it is back",
        )

    async def admit(self, ctx: RequestContext, estimate: Estimate) -> Reservation:
        if self.active:
            cap = self.cfg.max_input_tokens
            if cap is not None and estimate.prompt_tokens > cap:
                raise InvalidRequest(
                    f"The gateway is in emergency mode (daily spend limit reached): prompts are limited to "
                    f"about {cap} tokens.",
                    code="emergency_input_cap",
                )
            target = self.cfg.model
            if target is not None and ctx.endpoint != "embeddings" and ctx.model_requested != target:
                raise Downgrade("Emergency mode: routed to the fallback model.", target, reason="emergency")
        return _Charge(self, ctx)

    async def charge(self, micros: int) -> None:
        key = _day_key()
        if self.background is not None:
            self.background.add(key, micros, functools.partial(self._add, key))
        else:
            await self._add(key, micros)

    async def _add(self, key: str, micros: int) -> None:
        """Add to the day's counter (a reservation that cannot be refused); seed it first if missing."""
        counter = Counter(key, UNLIMITED, micros, DAY_TTL)
        try:
            if (await self.store.reserve([counter])).missing and await self._seed(counter):
                await self.store.reserve([counter])
        except Exception as exc:
            self.outage.failed(exc)
            return
        self.outage.ok()

    async def _seed(self, counter: Counter) -> bool:
        """Seed the missing day counter from the ledger; False when the ledger cannot answer (a cost not
        added meanwhile is in the ledger, read by the next seeding)."""
        spent = 0
        if self.ledger is not None:
            since, until = _day_bounds(counter.key)
            try:
                async with asyncio.timeout(REBUILD_TIMEOUT_S):
                    spent = round(await self.ledger.spent_usd(since, until) * 1_000_000)
            except Exception as exc:
                self._ledger_outage.failed(exc)
                return False
            self._ledger_outage.ok()
        await self.store.seed([counter], [spent])
        return True

    async def check(self, seed: bool = True) -> None:
        """Read the day's spend and switch. ``seed``: seed a missing counter from the ledger (not at start:
        the ledger opens after access control)."""
        limit = self.cfg.daily_spend_usd
        if limit is None:
            return
        key = _day_key()
        counter = Counter(key, UNLIMITED, 0, DAY_TTL)
        if (await self.store.reserve([counter])).missing and not (seed and await self._seed(counter)):
            return  # keep the current state until the day's spend is known
        spent = await self.store.spent(key)
        active = spent >= limit * 1_000_000
        if active != self.active:
            self.active = active
            log.warning(
                "emergency mode on" if active else "emergency mode off",
                extra={"spent_usd": spent / 1e6, "threshold_usd": limit},
            )

    async def start(self) -> None:
        await self.check(seed=False)
        self._task = every(self.cfg.check_interval_s, self.check, "emergency-check", log)

    async def aclose(self) -> None:
        await cancel(self._task)
        self._task = None
