"""In-process backends: keys and ledger (tests, embedding), the default rate limiter and budget counters.

The rate limiter is exact for one process; with several processes or workers use the Redis backend.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from tollhouse.stores.base import ApiKey, Bucket, BucketState, Counter, Decision, LedgerRecord, Reserved


class MemoryKeyStore:
    def __init__(self) -> None:
        self._keys: dict[str, ApiKey] = {}
        self._version = 0

    async def open(self) -> None:
        return None

    async def put(self, key: ApiKey) -> None:
        for other in self._keys.values():
            if other.hash == key.hash and other.id != key.id:
                raise ValueError("a key with this hash already exists")
        self._keys[key.id] = replace(key)
        self._version += 1

    async def get(self, key_id: str) -> ApiKey | None:
        k = self._keys.get(key_id)
        return None if k is None else replace(k)

    async def all(self) -> list[ApiKey]:
        return sorted((replace(k) for k in self._keys.values()), key=lambda k: (k.created_at, k.id))

    async def version(self) -> int:
        return self._version

    async def touch(self, last_used: dict[str, float]) -> None:
        for key_id, ts in last_used.items():
            k = self._keys.get(key_id)
            if k is not None:
                k.last_used_at = max(ts, k.last_used_at or 0.0)

    async def aclose(self) -> None:
        return None


class MemoryRateLimitStore:
    """Token buckets in a dict: ``key → (level, updated)``, refilled lazily at ``capacity`` per minute."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._clock = clock

    def _level(self, key: str, capacity: int, now: float) -> float:
        state = self._buckets.get(key)
        if state is None:
            return float(capacity)
        level, updated = state
        return min(float(capacity), level + (now - updated) * capacity / 60.0)

    async def reserve(self, buckets: Sequence[Bucket]) -> Decision:
        return self.reserve_now(buckets)

    def reserve_now(self, buckets: Sequence[Bucket]) -> Decision:
        """Synchronous ``reserve`` (no await: atomic under asyncio by construction)."""
        now = self._clock()
        levels = [self._level(b.key, b.capacity, now) for b in buckets]
        retry = 0.0
        for b, level in zip(buckets, levels, strict=True):
            if level < b.amount:
                wait = math.inf if b.amount > b.capacity else (b.amount - level) * 60.0 / b.capacity
                retry = max(retry, wait)
        allowed = retry == 0.0
        states = []
        for b, level in zip(buckets, levels, strict=True):
            if allowed:
                level -= b.amount
                self._buckets[b.key] = (level, now)
            states.append(BucketState(int(level), max(0.0, (b.capacity - level) * 60.0 / b.capacity)))
        return Decision(allowed, retry, tuple(states))

    async def adjust(self, key: str, capacity: int, delta: int) -> None:
        now = self._clock()
        self._buckets[key] = (min(float(capacity), self._level(key, capacity, now) + delta), now)

    async def aclose(self) -> None:
        return None


class MemoryLedgerStore:
    def __init__(self) -> None:
        self.records: dict[str, LedgerRecord] = {}

    async def open(self) -> None:
        return None

    async def write(self, records: Sequence[LedgerRecord]) -> None:
        for r in records:
            self.records.setdefault(r.id, r)

    async def usage(self, group_by: str, since: float, until: float) -> list[dict[str, Any]]:
        groups: dict[Any, dict[str, Any]] = {}
        for r in self.records.values():
            if not since <= r.ts < until:
                continue
            grp = time.strftime("%Y-%m-%d", time.gmtime(r.ts)) if group_by == "day" else getattr(r, group_by)
            g = groups.setdefault(
                grp,
                {"grp": grp, "requests": 0, "errors": 0, "cache_hits": 0, "prompt_tokens": 0}
                | {"completion_tokens": 0, "cost_usd": 0.0, "unknown_cost": 0},
            )
            g["requests"] += 1
            g["errors"] += r.status >= 400
            g["cache_hits"] += r.cache_hit
            g["prompt_tokens"] += r.prompt_tokens or 0
            g["completion_tokens"] += r.completion_tokens or 0
            g["cost_usd"] += r.cost_usd or 0.0
            g["unknown_cost"] += r.cost_usd is None and r.status < 400
        return sorted(groups.values(), key=lambda g: (-g["cost_usd"], str(g["grp"])))

    async def spent_usd(
        self, since: float, until: float, by: str | None = None, value: str | None = None
    ) -> float:
        return sum(
            r.cost_usd or 0.0
            for r in self.records.values()
            if since <= r.ts < until and (by is None or getattr(r, by) == value)
        )

    async def count(self) -> int:
        return len(self.records)

    async def purge(self, before: float) -> int:
        old = [k for k, r in self.records.items() if r.ts < before]
        for k in old:
            del self.records[k]
        return len(old)

    async def aclose(self) -> None:
        return None


class MemoryBudgetStore:
    """Spend counters in a dict (one process). Expiry is by period key, so stale periods are just unused;
    they are dropped when the dict grows past ``max_keys`` (a dropped counter in use is rebuilt from the
    ledger, like one lost with a Redis restart)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._spent: dict[str, int] = {}
        self._epochs: dict[str, str] = {}
        self._max = max_keys

    async def reserve(self, counters: Sequence[Counter]) -> Reserved:
        spent = self._spent
        missing = tuple(i for i, c in enumerate(counters) if c.key not in spent)
        if missing:
            return Reserved(missing=missing)
        for i, c in enumerate(counters):
            if spent[c.key] + c.amount > c.limit:
                return Reserved(refused=i)
        for c in counters:
            spent[c.key] += c.amount
        return Reserved(epochs=tuple(self._epochs.get(c.key, "") for c in counters))

    async def seed(self, counters: Sequence[Counter], spent: Sequence[int]) -> None:
        if len(self._spent) > self._max:
            self._spent.clear()  # periods roll over; a rare rebuild beats unbounded growth
            self._epochs.clear()
        epoch = secrets.token_hex(4)
        for c, value in zip(counters, spent, strict=True):
            if c.key not in self._spent:
                self._spent[c.key] = value
                self._epochs[c.key] = epoch

    async def settle(self, counters: Sequence[Counter], epochs: Sequence[str], delta: int, cost: int) -> None:
        for c, epoch in zip(counters, epochs, strict=True):
            if c.key in self._spent:
                self._spent[c.key] += delta if self._epochs.get(c.key, "") == epoch else cost

    async def adjust(self, counters: Sequence[Counter], delta: int) -> None:
        for c in counters:
            self._spent[c.key] = self._spent.get(c.key, 0) + delta

    async def spent(self, key: str) -> int:
        return self._spent.get(key, 0)

    async def aclose(self) -> None:
        return None
