"""Redis backends of ``RateLimitStore`` (token buckets) and ``BudgetStore`` (spend counters), shared by
every gateway process.

One ``EVALSHA`` per admission checks and takes every bucket of the request atomically (the key's RPM/TPM
and its per-model RPM/TPM), using the server's clock so processes with skewed clocks agree. A key's buckets
share a hash tag, so the script is valid on Redis Cluster too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import redis.asyncio as aioredis

from tollhouse.stores.base import Bucket, BucketState, Counter, Decision

# KEYS: the buckets; ARGV: capacity, amount per bucket. Bucket hash: l = level, t = time of level.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local levels = {}
local retry = 0
for i = 1, #KEYS do
  local cap = tonumber(ARGV[2 * i - 1])
  local amt = tonumber(ARGV[2 * i])
  local s = redis.call('HMGET', KEYS[i], 'l', 't')
  local level = cap
  if s[1] then level = math.min(cap, tonumber(s[1]) + (now - tonumber(s[2])) * cap / 60.0) end
  levels[i] = level
  if level < amt then
    if amt > cap then retry = -1
    elseif retry >= 0 then retry = math.max(retry, (amt - level) * 60.0 / cap) end
  end
end
local allowed = retry == 0
local out = {}
for i = 1, #KEYS do
  local level = levels[i]
  if allowed then
    level = level - tonumber(ARGV[2 * i])
    redis.call('HSET', KEYS[i], 'l', tostring(level), 't', tostring(now))
    redis.call('PEXPIRE', KEYS[i], 180000)
  end
  out[i] = tostring(level)
end
return {allowed and 1 or 0, tostring(retry), out}
"""

_ADJUST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cap = tonumber(ARGV[1])
local s = redis.call('HMGET', KEYS[1], 'l', 't')
local level = cap
if s[1] then level = math.min(cap, tonumber(s[1]) + (now - tonumber(s[2])) * cap / 60.0) end
level = math.min(cap, level + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'l', tostring(level), 't', tostring(now))
redis.call('PEXPIRE', KEYS[1], 180000)
return tostring(level)
"""


class RedisRateLimitStore:
    def __init__(self, url: str, prefix: str, timeout_s: float = 0.5) -> None:
        self.prefix = prefix
        self._redis = aioredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._reserve = self._redis.register_script(_RESERVE)
        self._adjust = self._redis.register_script(_ADJUST)

    async def reserve(self, buckets: Sequence[Bucket]) -> Decision:
        keys = [self.prefix + b.key for b in buckets]
        args: list[int] = []
        for b in buckets:
            args += [b.capacity, b.amount]
        allowed, retry, levels = await self._reserve(keys=keys, args=args)
        retry_s = float(retry)
        states = tuple(
            BucketState(int(float(lv)), max(0.0, (b.capacity - float(lv)) * 60.0 / b.capacity))
            for b, lv in zip(buckets, levels, strict=True)
        )
        return Decision(bool(allowed), math.inf if retry_s < 0 else retry_s, states)

    async def adjust(self, key: str, capacity: int, delta: int) -> None:
        await self._adjust(keys=[self.prefix + key], args=[capacity, delta])

    async def aclose(self) -> None:
        await self._redis.aclose()


# KEYS: counters; ARGV: limit, amount, ttl per counter.
_BUDGET_RESERVE = """
for i = 1, #KEYS do
  local spent = tonumber(redis.call('GET', KEYS[i]) or '0')
  if spent + tonumber(ARGV[3 * i - 1]) > tonumber(ARGV[3 * i - 2]) then return i - 1 end
end
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[3 * i - 1])
  redis.call('EXPIRE', KEYS[i], ARGV[3 * i], 'NX')
end
return -1
"""

_BUDGET_ADJUST = """
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[1])
  redis.call('EXPIRE', KEYS[i], ARGV[i + 1], 'NX')
end
return 0
"""


class RedisBudgetStore:
    """Budget counters shared by every process: one atomic script per admission and per settlement."""

    def __init__(self, url: str, prefix: str, timeout_s: float = 0.5) -> None:
        self.prefix = prefix
        self._redis = aioredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._reserve = self._redis.register_script(_BUDGET_RESERVE)
        self._adjust = self._redis.register_script(_BUDGET_ADJUST)

    async def reserve(self, counters: Sequence[Counter]) -> int | None:
        args: list[int] = []
        for c in counters:
            args += [c.limit, c.amount, c.ttl_s]
        refused = int(await self._reserve(keys=[self.prefix + c.key for c in counters], args=args))
        return None if refused < 0 else refused

    async def adjust(self, counters: Sequence[Counter], delta: int) -> None:
        if counters and delta:
            args = [delta, *(c.ttl_s for c in counters)]
            await self._adjust(keys=[self.prefix + c.key for c in counters], args=args)

    async def spent(self, key: str) -> int:
        value = await self._redis.get(self.prefix + key)
        return int(value or 0)

    async def aclose(self) -> None:
        await self._redis.aclose()
