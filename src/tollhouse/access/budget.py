"""Budget admission: spend caps per key, user and team, per UTC day and month (docs/adr/0007-reservations.md).

Admission reserves the request's worst-case cost — over every deployment it may reach (its group, every
fallback chain, a cascade's higher tiers), its prompt counted by an upper bound and its whole output cap —
on every applicable counter at once (all or nothing), so any number of concurrent requests, on any number
of processes sharing Redis, spend at most the budget plus one request's worst case. Settlement replaces
the reservation with the actual cost; a request refused before any upstream call gives it all back, a
failed call whose usage is unknown keeps it (we may have been billed). A counter that is missing (a new
period, a restarted or evicting Redis, a restarted process) is first seeded from the ledger's recorded
spend. ``Admission`` chains this after the rate limiter and settles both.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

from tollhouse.access.alerts import BudgetAlerter
from tollhouse.access.limits import Background
from tollhouse.config.access import BudgetLimit, BudgetsSettings
from tollhouse.errors import BudgetExceeded, Downgrade, Overloaded
from tollhouse.outage import Outage
from tollhouse.pricing import PriceBook
from tollhouse.stores.base import BudgetStore, Counter, Reserved
from tollhouse.tasks import Flusher
from tollhouse.types import SETTLED, Estimate, Principal, RequestContext, Reservation, Usage

log = logging.getLogger("tollhouse.budget")
MICRO = 1_000_000
DAY_TTL = 2 * 86400
MONTH_TTL = 32 * 86400
MAX_MICROS = 2**62  # a counter's largest value: room to add one more worst case within int64
REBUILD_TIMEOUT_S = 2.0  # longest wait for the ledger while seeding a lost counter
READ_REUSE_S = 60.0  # a finished ledger read may seed its counter this long after it was started
SEED_ROUNDS = 3  # reserve → seed what is missing → reserve again, at most this many times


def _micros(usd: float) -> int:
    if not usd < MAX_MICROS / MICRO:  # NaN, inf or absurd (a key stored before budgets were bounded)
        return MAX_MICROS  # saturate: no practical limit, never an OverflowError
    return math.ceil(usd * MICRO - 1e-6)


class SpendRecord(Protocol):
    """Where a lost counter's spend is read back from: the usage ledger's store."""

    async def spent_usd(
        self, since: float, until: float, by: str | None = None, value: str | None = None
    ) -> float: ...


@dataclass(slots=True, frozen=True)
class _Source:
    """What a counter sums in the ledger: records of ``by`` = ``value`` within the UTC ``period``
    (``YYYY-MM-DD`` or ``YYYY-MM``)."""

    by: str
    value: str
    period: str

    def bounds(self) -> tuple[float, float]:
        if len(self.period) == 10:
            start = calendar.timegm(time.strptime(self.period, "%Y-%m-%d"))
            return start, start + 86400.0
        t = time.strptime(self.period, "%Y-%m")
        year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
        return calendar.timegm(t), calendar.timegm((year, month, 1, 0, 0, 0, 0, 0, 0))


class _BudgetReservation:
    __slots__ = ("_counters", "_ctx", "_epochs", "_limiter", "_reserved", "_store")

    def __init__(
        self,
        limiter: BudgetLimiter,
        ctx: RequestContext,
        store: BudgetStore,
        counters: list[Counter],
        epochs: tuple[str, ...],
        reserved: int,
    ) -> None:
        self._limiter = limiter
        self._ctx = ctx
        self._store = store
        self._counters = counters
        self._epochs = epochs
        self._reserved = reserved

    async def settle(self, usage: Usage | None) -> None:
        ctx = self._ctx
        if usage is not None:
            cost = _micros(self._limiter.prices.cost(ctx.deployment, usage))
            delta = cost - self._reserved
        elif ctx.attempts == 0:
            cost, delta = 0, -self._reserved
        else:
            cost, delta = self._reserved, 0  # usage unknown after an upstream call: keep the worst case
        if delta or cost:
            await self._limiter.settle(self._store, self._counters, self._epochs, delta, cost)


@dataclass(slots=True)
class _Pending:
    store: BudgetStore
    counters: list[Counter]
    epochs: tuple[str, ...]
    delta: int
    cost: int


class _Settlements:
    """Settlements against a shared store, off the request path and coalesced like ``limits.Background``:
    per store, counter set and epochs, deltas and costs are summed and applied once per ``interval_s``.
    ``drain`` applies what is pending, on shutdown."""

    def __init__(self, limiter: BudgetLimiter, interval_s: float = 0.01) -> None:
        self._limiter = limiter
        self._pending: dict[tuple[int, tuple[str, ...], tuple[str, ...]], _Pending] = {}
        self._flusher = Flusher(interval_s, lambda: bool(self._pending), self.flush)

    def add(
        self, store: BudgetStore, counters: list[Counter], epochs: tuple[str, ...], delta: int, cost: int
    ) -> None:
        key = (id(store), tuple(c.key for c in counters), epochs)
        cur = self._pending.get(key)
        if cur is None:
            self._pending[key] = _Pending(store, counters, epochs, delta, cost)
        else:
            cur.delta += delta
            cur.cost += cost
        self._flusher.kick()

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for p in pending.values():
            await self._limiter.apply(p.store, p.counters, p.epochs, p.delta, p.cost)

    async def drain(self) -> None:
        await self._flusher.drain()


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
        self.background = background  # a shared store: settle off the request path (emergency mode too)
        self._settlements = _Settlements(self) if background is not None else None
        self.alerter: BudgetAlerter | None = None  # set by ``access.Access`` (needs a running loop)
        self.ledger: SpendRecord | None = None  # set by the runtime when the ledger is on
        self.store_errors = 0
        closed = cfg.on_store_error == "closed" or fallback is None
        self.outage = Outage(
            "budget store",
            log,
            "refusing budgeted requests with 503"
            if closed
            else "checking budgets with this process's counters",
        )
        self._ledger_outage = Outage(
            "usage ledger (budget rebuild)", log, "lost budget counters cannot be rebuilt until it is back"
        )
        self._reads: dict[_Source, tuple[float, asyncio.Future[float]]] = {}  # ledger reads for seeding

    def _counters(self, p: Principal, amount: int) -> tuple[list[Counter], list[str], list[_Source]]:
        scopes: list[tuple[str, str, str, BudgetLimit | None]] = []
        if p.key_id is not None and p.limits is not None and (p.limits.daily_usd or p.limits.monthly_usd):
            own = BudgetLimit(daily_usd=p.limits.daily_usd, monthly_usd=p.limits.monthly_usd)
            scopes.append(("key", "key_id", p.key_id, own))
        if p.user is not None:
            scopes.append(("user", "user", p.user, self.cfg.users.get(p.user)))
        if p.team is not None:
            scopes.append(("team", "team", p.team, self.cfg.teams.get(p.team)))
        counters: list[Counter] = []
        names: list[str] = []
        sources: list[_Source] = []
        if not any(scope[3] is not None for scope in scopes):
            return counters, names, sources
        now = time.gmtime()
        day, month = time.strftime("%Y-%m-%d", now), time.strftime("%Y-%m", now)
        for kind, by, value, limit in scopes:
            if limit is None:
                continue
            scope = f"{kind}:{value}"
            if limit.daily_usd:
                counters.append(Counter(f"b:{scope}:d:{day}", _micros(limit.daily_usd), amount, DAY_TTL))
                names.append(f"daily budget of {kind} {value}")
                sources.append(_Source(by, value, day))
            if limit.monthly_usd:
                counters.append(
                    Counter(f"b:{scope}:m:{month}", _micros(limit.monthly_usd), amount, MONTH_TTL)
                )
                names.append(f"monthly budget of {kind} {value}")
                sources.append(_Source(by, value, month))
        return counters, names, sources

    async def admit(self, ctx: RequestContext, estimate: Estimate) -> Reservation:
        p = ctx.principal
        if p.anonymous or (p.limits is None and p.user is None and p.team is None):
            return SETTLED
        worst = self.prices.worst_of(
            estimate.worst or ((ctx.deployment or "", estimate.prompt_tokens, estimate.max_output_tokens),)
        )
        amount = _micros(worst)
        counters, names, sources = self._counters(p, amount)
        if not counters:
            return SETTLED
        store, got = await self._reserve(counters, sources)
        if got.refused is not None:
            target = self.cfg.downgrade_to
            if self.cfg.on_exceeded == "downgrade" and target and ctx.model_requested != target:
                raise Downgrade(
                    f"The {names[got.refused]} is used up.", target, status=self.cfg.exceeded_status
                )
            raise BudgetExceeded(
                f"The {names[got.refused]} is used up (this request could cost up to ${worst:.6f}).",
                status=self.cfg.exceeded_status,
            )
        if self.alerter is not None:
            self.alerter.watch(counters, names)
        return _BudgetReservation(self, ctx, store, counters, got.epochs, amount)

    async def _reserve(self, counters: list[Counter], sources: list[_Source]) -> tuple[BudgetStore, Reserved]:
        """Reserve on the store, seeding missing counters from the ledger first; on a store (or, while
        seeding, ledger) failure, follow ``on_store_error``: 503, or the in-process fallback store."""
        try:
            got = await self._seeded(self.store, counters, sources, strict=True)
        except Exception as exc:
            self.store_errors += 1
            self.outage.failed(exc)
            if self.cfg.on_store_error == "closed" or self.fallback is None:
                raise Overloaded("Budget checks are unavailable; try again shortly.", retry_after=1) from None
            return self.fallback, await self._seeded(self.fallback, counters, sources, strict=False)
        self.outage.ok()
        return self.store, got

    async def _seeded(
        self, store: BudgetStore, counters: list[Counter], sources: list[_Source], *, strict: bool
    ) -> Reserved:
        for _ in range(SEED_ROUNDS):
            got = await store.reserve(counters)
            if not got.missing:
                return got
            missing = [counters[i] for i in got.missing]
            spent = [await self._recorded(sources[i], strict) for i in got.missing]
            await store.seed(missing, spent)
            for i in got.missing:
                self._reads.pop(sources[i], None)
        raise RuntimeError("budget counters disappeared while being seeded")

    async def _recorded(self, source: _Source, strict: bool) -> int:
        """Micro-USD the ledger recorded for ``source`` (0 with the ledger off). One read per source at a
        time, shared by every request that finds the counter missing and not cancelled when they stop
        waiting (``REBUILD_TIMEOUT_S``): a slow read finishes for the next request. ``strict``: a ledger
        that cannot answer raises (seeding 0 would forget the period's spend); otherwise (the per-process
        fallback, which only bounds an outage) it counts as 0."""
        if self.ledger is None:
            return 0
        now = time.monotonic()
        read = self._reads.get(source)
        if read is None or (read[1].done() and (read[1].cancelled() or read[1].exception() is not None)):
            since, until = source.bounds()
            task = asyncio.ensure_future(self.ledger.spent_usd(since, until, source.by, source.value))
            for key in [k for k, (t0, t) in self._reads.items() if t.done() and now - t0 > READ_REUSE_S]:
                del self._reads[key]  # a finished read nobody used: stale by now
            read = self._reads[source] = (now, task)
        try:
            async with asyncio.timeout(REBUILD_TIMEOUT_S):
                usd = await asyncio.shield(read[1])
        except Exception as exc:
            self._ledger_outage.failed(
                TimeoutError("no answer in time") if isinstance(exc, TimeoutError) else exc
            )
            if strict:
                raise
            return 0
        self._ledger_outage.ok()
        return _micros(usd)

    async def settle(
        self, store: BudgetStore, counters: list[Counter], epochs: tuple[str, ...], delta: int, cost: int
    ) -> None:
        if self._settlements is not None:
            self._settlements.add(store, counters, epochs, delta, cost)
        else:
            await self.apply(store, counters, epochs, delta, cost)

    async def apply(
        self, store: BudgetStore, counters: list[Counter], epochs: tuple[str, ...], delta: int, cost: int
    ) -> None:
        try:
            await store.settle(counters, epochs, delta, cost)
        except Exception as exc:
            self.store_errors += 1
            self.outage.failed(exc, phase="settle", micro_usd=delta)

    async def aclose(self) -> None:
        if self._settlements is not None:
            await self._settlements.drain()
        if self.background is not None:
            await self.background.drain()
        await self.store.aclose()
