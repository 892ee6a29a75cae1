"""Per-version counters of stored prompts (requests, errors, latency buckets, tokens, cost, ratings …) and
which prompt version answered each request (for ratings that arrive later): in this process, or in Redis so
that every replica adds to and reads the same totals. Counter names are the caller's; values are integers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Protocol

import redis.asyncio as aioredis

VersionKey = tuple[str, int]  # (prompt id, version)


class PromptCounters(Protocol):
    async def add(self, deltas: Mapping[VersionKey, Mapping[str, int]]) -> None:
        """Add each delta to its version's counters (one round trip)."""
        ...

    async def read(self, keys: list[VersionKey]) -> dict[VersionKey, dict[str, int]]:
        """Every counter of each version (an empty dict for a version never counted)."""
        ...

    async def remember(self, answered: Mapping[str, VersionKey]) -> None:
        """Which version answered each request id (kept a week, or the last 100,000 in memory)."""
        ...

    async def answered_by(self, request_id: str) -> VersionKey | None: ...

    async def aclose(self) -> None: ...


class MemoryPromptCounters:
    def __init__(self, max_requests: int = 100_000) -> None:
        self._counts: dict[VersionKey, dict[str, int]] = {}
        self._answered: OrderedDict[str, VersionKey] = OrderedDict()
        self._max = max_requests

    async def add(self, deltas: Mapping[VersionKey, Mapping[str, int]]) -> None:
        for key, fields in deltas.items():
            counts = self._counts.setdefault(key, {})
            for name, n in fields.items():
                counts[name] = counts.get(name, 0) + n

    async def read(self, keys: list[VersionKey]) -> dict[VersionKey, dict[str, int]]:
        return {k: dict(self._counts.get(k, {})) for k in keys}

    async def remember(self, answered: Mapping[str, VersionKey]) -> None:
        self._answered.update(answered)
        while len(self._answered) > self._max:
            self._answered.popitem(last=False)

    async def answered_by(self, request_id: str) -> VersionKey | None:
        return self._answered.get(request_id)

    async def aclose(self) -> None:
        return None


_WEEK_S = 7 * 86400


class RedisPromptCounters:
    """One hash per version (``<prefix>pv:<id>:<version>``), one short key per answered request."""

    def __init__(self, url: str, prefix: str) -> None:
        self._redis = aioredis.Redis.from_url(url, decode_responses=True)
        self._prefix = prefix

    def _key(self, key: VersionKey) -> str:
        return f"{self._prefix}pv:{key[0]}:{key[1]}"

    async def add(self, deltas: Mapping[VersionKey, Mapping[str, int]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for key, fields in deltas.items():
            for name, n in fields.items():
                if n:
                    pipe.hincrby(self._key(key), name, n)
        await pipe.execute()

    async def read(self, keys: list[VersionKey]) -> dict[VersionKey, dict[str, int]]:
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(self._key(key))
        rows = await pipe.execute()
        return {k: {n: int(v) for n, v in row.items()} for k, row in zip(keys, rows, strict=True)}

    async def remember(self, answered: Mapping[str, VersionKey]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for request_id, (pid, version) in answered.items():
            pipe.set(f"{self._prefix}pr:{request_id}", f"{version}:{pid}", ex=_WEEK_S)
        await pipe.execute()

    async def answered_by(self, request_id: str) -> VersionKey | None:
        value = await self._redis.get(f"{self._prefix}pr:{request_id}")
        if not value:
            return None
        version, _, pid = str(value).partition(":")
        return pid, int(version)

    async def aclose(self) -> None:
        await self._redis.aclose()
