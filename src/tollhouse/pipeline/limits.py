"""Admission stage: rate limits and budgets reserve before the call and settle after it.

``admit`` returns a ``Reservation`` that must be settled exactly once with the actual usage (or ``None`` when
the request failed or usage is unknown). The pass-through ``Unlimited`` admits everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tollhouse.types import RequestContext, Usage


@dataclass(slots=True, frozen=True)
class Estimate:
    """What admission knows before the call: prompt tokens (estimated) and the output cap."""

    prompt_tokens: int
    max_output_tokens: int


class Reservation(Protocol):
    async def settle(self, usage: Usage | None) -> None:
        """Correct the reservation against actual usage. Called once, from a ``finally``."""
        ...


class Limiter(Protocol):
    async def admit(self, ctx: RequestContext, estimate: Estimate) -> Reservation:
        """Reserve capacity or raise ``RateLimited`` (429) with ``retry_after``."""
        ...


class _Settled:
    async def settle(self, usage: Usage | None) -> None:
        return None


class Unlimited:
    """No limits configured."""

    _R = _Settled()

    async def admit(self, ctx: RequestContext, estimate: Estimate) -> Reservation:
        return self._R
