"""Per-version counters of stored prompts (requests, errors, latency buckets, tokens, cost, ratings …) and
which prompt version answered each request (for ratings that arrive later): in this process, or in Redis or
PostgreSQL so that every replica adds to and reads the same totals. Counter names are the caller's; values
are integers.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
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
        import redis.asyncio as aioredis  # loaded only when prompt counters live in Redis

        self._redis: aioredis.Redis = aioredis.Redis.from_url(url, decode_responses=True)
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


_PG_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS prompt_counters (prompt TEXT NOT NULL, version INTEGER NOT NULL, "
    "name TEXT NOT NULL, value BIGINT NOT NULL, PRIMARY KEY (prompt, version, name))",
    "CREATE TABLE IF NOT EXISTS prompt_answered (request_id TEXT PRIMARY KEY, prompt TEXT NOT NULL, "
    "version INTEGER NOT NULL, at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS prompt_answered_at ON prompt_answered (at)",
)
_PG_LOCK = 0x70726F63  # advisory lock id for creating the schema


class PostgresPromptCounters:
    """One row per (prompt, version, counter), added to with ``ON CONFLICT … DO UPDATE`` in one batch;
    answered requests older than a week are deleted as new ones are written."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._pool: Any = None

    async def _open(self) -> Any:
        if self._pool is None:
            from tollhouse.stores.sql import open_pg_pool

            self._pool = await open_pg_pool(self._dsn, _PG_SCHEMA, _PG_LOCK)
        return self._pool

    async def add(self, deltas: Mapping[VersionKey, Mapping[str, int]]) -> None:
        rows = [(pid, v, name, n) for (pid, v), fields in deltas.items() for name, n in fields.items() if n]
        if not rows:
            return
        pool = await self._open()
        await pool.executemany(
            "INSERT INTO prompt_counters (prompt, version, name, value) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (prompt, version, name) "
            "DO UPDATE SET value = prompt_counters.value + excluded.value",
            sorted(rows),  # one lock order for every writer
        )

    async def read(self, keys: list[VersionKey]) -> dict[VersionKey, dict[str, int]]:
        pool = await self._open()
        out: dict[VersionKey, dict[str, int]] = {k: {} for k in keys}
        rows = await pool.fetch(
            "SELECT prompt, version, name, value FROM prompt_counters "
            "WHERE (prompt, version) IN (SELECT * FROM unnest($1::text[], $2::int[]))",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        for r in rows:
            out[(r["prompt"], r["version"])][r["name"]] = int(r["value"])
        return out

    async def remember(self, answered: Mapping[str, VersionKey]) -> None:
        now = time.time()
        pool = await self._open()
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO prompt_answered (request_id, prompt, version, at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (request_id) DO NOTHING",
                [(rid, pid, v, now) for rid, (pid, v) in answered.items()],
            )
            await conn.execute("DELETE FROM prompt_answered WHERE at < $1", now - _WEEK_S)

    async def answered_by(self, request_id: str) -> VersionKey | None:
        pool = await self._open()
        row = await pool.fetchrow(
            "SELECT prompt, version FROM prompt_answered WHERE request_id = $1", request_id
        )
        return None if row is None else (str(row["prompt"]), int(row["version"]))

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
