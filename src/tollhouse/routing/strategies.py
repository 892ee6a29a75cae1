"""Picking one deployment of a model group: priority order, weighted random, least in flight, or lowest
moving-average latency. A pick only considers targets that can serve the request now (circuit not open,
under their concurrency cap, capable, large enough for ``max_tokens``, not already tried)."""

from __future__ import annotations

import random
from collections.abc import Callable

from tollhouse.providers.registry import Deployment
from tollhouse.routing.breaker import CircuitBreaker
from tollhouse.settings import GroupConfig

EWMA_ALPHA = 0.3  # weight of the newest latency sample


class Target:
    """One deployment with its live routing state (shared by every group that lists it)."""

    __slots__ = ("breaker", "cap", "dep", "ewma_s", "in_flight", "name", "timeouts")

    def __init__(self, dep: Deployment, breaker: CircuitBreaker) -> None:
        self.dep = dep
        self.name = dep.name
        self.breaker = breaker
        self.cap = dep.config.max_concurrency
        self.timeouts = dep.config.timeouts
        self.in_flight = 0
        self.ewma_s: float | None = None

    def observe_latency(self, seconds: float) -> None:
        prev = self.ewma_s
        self.ewma_s = seconds if prev is None else prev + EWMA_ALPHA * (seconds - prev)

    def can_serve(self, capability: str, max_tokens: int | None) -> bool:
        if not getattr(self.dep.provider.capabilities, capability):
            return False
        return max_tokens is None or max_tokens <= self.dep.config.max_output_tokens


Strategy = Callable[[list[Target], random.Random, list[float]], Target]


def _priority(ts: list[Target], rng: random.Random, weights: list[float]) -> Target:
    return ts[0]


def _least_busy(ts: list[Target], rng: random.Random, weights: list[float]) -> Target:
    return min(ts, key=lambda t: t.in_flight)


def _latency(ts: list[Target], rng: random.Random, weights: list[float]) -> Target:
    # An unmeasured deployment counts as fastest, so every member gets measured.
    return min(ts, key=lambda t: t.ewma_s or 0.0)


def _weighted(ts: list[Target], rng: random.Random, weights: list[float]) -> Target:
    r = rng.random() * sum(weights)
    for t, w in zip(ts, weights, strict=True):
        r -= w
        if r < 0:
            return t
    return ts[-1]


STRATEGIES: dict[str, Strategy] = {
    "priority": _priority,
    "least_busy": _least_busy,
    "latency": _latency,
    "weighted": _weighted,
}


class Picker:
    """A group's members and strategy."""

    __slots__ = ("_strategy", "_weights", "targets")

    def __init__(self, targets: list[Target], strategy: str, weights: list[float] | None = None) -> None:
        self.targets = targets
        self._strategy = STRATEGIES[strategy]
        self._weights = weights or [1.0] * len(targets)

    @classmethod
    def for_group(cls, cfg: GroupConfig, targets: dict[str, Target]) -> Picker:
        members = [targets[m.model] for m in cfg.deployments]
        return cls(members, cfg.strategy, [m.weight for m in cfg.deployments])

    def pick(
        self,
        now: float,
        rng: random.Random,
        capability: str,
        max_tokens: int | None,
        exclude: list[Target] | None,
    ) -> Target | None:
        """The member to try next, or None when no member can serve now."""
        ts = self.targets
        if len(ts) == 1:  # the common case: a plain model name
            t = ts[0]
            ok = t.breaker.available(now) and (t.cap is None or t.in_flight < t.cap)
            ok = ok and t.can_serve(capability, max_tokens) and (exclude is None or t not in exclude)
            return t if ok else None
        ready: list[Target] = []
        weights: list[float] = []
        for t, w in zip(ts, self._weights, strict=True):
            if exclude is not None and t in exclude:
                continue
            if not t.breaker.available(now) or (t.cap is not None and t.in_flight >= t.cap):
                continue
            if t.can_serve(capability, max_tokens):
                ready.append(t)
                weights.append(w)
        return self._strategy(ready, rng, weights) if ready else None
