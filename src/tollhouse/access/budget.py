"""Budget admission: spend caps per key, user and team, per UTC day and month (docs/adr/0007-reservations.md).

Admission reserves the request's worst-case cost — the estimated prompt at the full input price plus the
whole ``max_tokens`` at the output price — on every applicable counter at once (all or nothing), so any
number of concurrent requests, on any number of processes sharing Redis, can overspend a budget by at most
one request's worst case (the prompt estimate is the only inexact part). Settlement replaces the
reservation with the actual cost; a request refused before any upstream call gives it all back, a failed
call whose usage is unknown keeps it (we may have been billed). ``Admission`` chains this after the rate
limiter and settles both.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Sequence

from tollhouse.access.alerts import BudgetAlerter
from tollhouse.access.limits import Background
from tollhouse.config.access import BudgetLimit, BudgetsSettings
from tollhouse.errors import BudgetExceeded, Downgrade, Overloaded
from tollhouse.pricing import PriceBook
from tollhouse.stores.base import BudgetStore, Counter
from tollhouse.types import SETTLED, Estimate, Principal, RequestContext, Reservation, Usage

log = logging.getLogger("tollhouse.budget")
MICRO = 1_000_000
DAY_TTL = 2 * 86400
MONTH_TTL = 32 * 86400
MAX_MICROS = 2**62  # a counter's largest value: room to add one more worst case within int64


def _micros(usd: float) -> int:
    if not usd < MAX_MICROS / MICRO:  # NaN, inf or absurd (a key stored before budgets were bounded)
        return MAX_MICROS  # saturate: no practical limit, never an OverflowError
    return math.ceil(usd * MICRO - 1e-6)


class _BudgetReservation:
    __slots__ = ("_counters", "_ctx", "_limiter", "_reserved")

    def __init__(self, limiter: BudgetLimiter, ctx: RequestContext, counters: list[Counter], reserved: int):
        self._limiter = limiter
        self._ctx = ctx
        self._counters = counters
        self._reserved = reserved

    async def settle(self, usage: Usage | None) -> None:
        ctx = self._ctx
        if usage is not None:
            delta = _micros(self._limiter.prices.cost(ctx.deployment, usage)) - self._reserved
        elif ctx.attempts == 0:
            delta = -self._reserved
        else:
            delta = 0  # usage unknown after an upstream call: keep the worst case
        lim = self._limiter
        if delta:
            if lim.background is not None:
                key = tuple(c.key for c in self._counters)
                lim.background.add(key, delta, functools.partial(lim.adjust, self._counters))
            else:
                await lim.adjust(self._counters, delta)


class BudgetLimiter:
    def __init__(
        self,
        store: BudgetStore,
        cfg: BudgetsSettings,
        prices: PriceBook,
        fallback: BudgetStore | None = None,
        background: Background | None = None,
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.prices = prices
        self.fallback = fallback
        self.background = background
        self.alerter: BudgetAlerter | None = None  # set by ``access.Access`` (needs a running loop)
        self.store_errors = 0

    def _counters(self, p: Principal, amount: int) -> tuple[list[Counter], list[str]]:
        scopes: list[tuple[str, BudgetLimit | None]] = []
        if p.limits is not None and (p.limits.daily_usd or p.limits.monthly_usd):
            scopes.append(
                (
                    f"key:{p.key_id}",
                    BudgetLimit(daily_usd=p.limits.daily_usd, monthly_usd=p.limits.monthly_usd),
                )
            )
        if p.user is not None:
            scopes.append((f"user:{p.user}", self.cfg.users.get(p.user)))
        if p.team is not None:
            scopes.append((f"team:{p.team}", self.cfg.teams.get(p.team)))
        counters: list[Counter] = []
        names: list[str] = []
        if not any(limit is not None for _, limit in scopes):
            return counters, names
        now = time.gmtime()
        day, month = time.strftime("%Y-%m-%d", now), time.strftime("%Y-%m", now)
        for scope, limit in scopes:
            if limit is None:
                continue
            if limit.daily_usd:
                counters.append(Counter(f"b:{scope}:d:{day}", _micros(limit.daily_usd), amount, DAY_TTL))
                names.append(f"daily budget of {scope.replace(':', ' ', 1)}")
            if limit.monthly_usd:
                counters.append(
                    Counter(f"b:{scope}:m:{month}", _micros(limit.monthly_usd), amount, MONTH_TTL)
                )
                names.append(f"monthly budget of {scope.replace(':', ' ', 1)}")
        return counters, names

    async def admit(self, ctx: RequestContext, estimate: Estimate) -> Reservation:
        p = ctx.principal
        if p.anonymous or (p.limits is None and p.user is None and p.team is None):
            return SETTLED
        worst = self.prices.worst_case(ctx.deployment, estimate.prompt_tokens, estimate.max_output_tokens)
        amount = _micros(worst)
        counters, names = self._counters(p, amount)
        if not counters:
            return SETTLED
        refused = await self._reserve(counters)
        if refused is not None:
            target = self.cfg.downgrade_to
            if self.cfg.on_exceeded == "downgrade" and target and ctx.model_requested != target:
                raise Downgrade(f"The {names[refused]} is used up.", target, status=self.cfg.exceeded_status)
            raise BudgetExceeded(
                f"The {names[refused]} is used up (this request could cost up to ${worst:.6f}).",
                status=self.cfg.exceeded_status,
            )
        if self.alerter is not None:
            self.alerter.watch(counters, names)
        return _BudgetReservation(self, ctx, counters, amount)

    async def _reserve(self, counters: Sequence[Counter]) -> int | None:
        try:
            return await self.store.reserve(counters)
        except Exception as exc:
            self.store_errors += 1
            log.warning("budget store unreachable", extra={"error": type(exc).__name__})
            if self.cfg.on_store_error == "closed" or self.fallback is None:
                raise Overloaded("Budget checks are unavailable; try again shortly.", retry_after=1) from None
            return await self.fallback.reserve(counters)

    async def adjust(self, counters: Sequence[Counter], delta: int) -> None:
        try:
            await self.store.adjust(counters, delta)
        except Exception as exc:
            self.store_errors += 1
            log.warning("budget settlement failed", extra={"error": type(exc).__name__, "micro_usd": delta})

    async def aclose(self) -> None:
        if self.background is not None:
            await self.background.drain()
        await self.store.aclose()
