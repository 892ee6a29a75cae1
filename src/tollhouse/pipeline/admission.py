"""Admission seam: rate limits and budgets reserve before the call and settle after it.

``admit`` returns a ``Reservation`` that must be settled exactly once with the actual usage (or ``None`` when
the request failed or usage is unknown). ``Unlimited`` admits everything; ``Admission`` runs several limiters
as one (the implementations live in ``access/``). See docs/adr/0007-reservations.md.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from tollhouse.types import SETTLED, Estimate, RequestContext, Reservation, Usage


class Limiter(Protocol):
    async def admit(self, ctx: RequestContext, estimate: Estimate) -> Reservation:
        """Reserve capacity or raise ``RateLimited`` (429) with ``retry_after``."""
        ...


class Unlimited:
    """No limits configured."""

    _R = SETTLED

    async def admit(self, ctx: RequestContext, estimate: Estimate) -> Reservation:
        return self._R


class _Both:
    __slots__ = ("_parts",)

    def __init__(self, parts: list[Reservation]) -> None:
        self._parts = parts

    async def settle(self, usage: Usage | None) -> None:
        for r in self._parts:
            await r.settle(usage)


class Admission:
    """Limiters in order (rate limits, then budgets); when one refuses, the others' reservations are
    released before the error propagates. ``concurrent`` (remote stores): all are asked at once, so
    admission costs one round trip of wall time instead of one per limiter."""

    def __init__(self, limiters: list[Limiter], concurrent: bool = False) -> None:
        self.limiters = limiters
        self.concurrent = concurrent

    async def admit_request(self, ctx: RequestContext) -> None:
        """Only the request-rate limits (limiters that have them): a request with no model and no tokens."""
        for lim in self.limiters:
            admit_request = getattr(lim, "admit_request", None)
            if admit_request is not None:
                await admit_request(ctx)

    async def admit(self, ctx: RequestContext, estimate: Estimate) -> Reservation:
        if self.concurrent:
            results = await asyncio.gather(
                *(lim.admit(ctx, estimate) for lim in self.limiters), return_exceptions=True
            )
            taken = [r for r in results if not isinstance(r, BaseException) and r is not SETTLED]
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                for r in taken:
                    await r.settle(None)
                raise errors[0]
        else:
            taken = []
            try:
                for lim in self.limiters:
                    r = await lim.admit(ctx, estimate)
                    if r is not SETTLED:
                        taken.append(r)
            except BaseException:
                for r in taken:
                    await r.settle(None)
                raise
        if not taken:
            return SETTLED
        return taken[0] if len(taken) == 1 else _Both(taken)
