"""Redis backends of ``RateLimitStore`` (token buckets) and ``BudgetStore`` (spend counters), shared by
every gateway process.

One ``EVALSHA`` per admission checks and takes every bucket of the request atomically (the key's RPM/TPM
and its per-model RPM/TPM), using the server's clock so processes with skewed clocks agree. A key's buckets
share a hash tag, so the script is valid on Redis Cluster too. The budget scripts touch key, user and team
counters at once and need a single Redis.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence

import redis.asyncio as aioredis

from tollhouse.stores.base import Bucket, BucketState, Counter, Decision, Reserved

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


# Budget counters: KEYS are the n counters, then their n epoch keys (``<counter>#e``, written only by a
# seed: which rebuild of the counter this is). A counter is created only by the seed script.

# ARGV: limit, amount, ttl per counter. Returns {0, {}, epochs} when taken, {1, missing indexes, {}} when some
# counter does not exist, {2, {refused index}, {}} when one would overflow.
_BUDGET_RESERVE = """
local n = #KEYS / 2
local spent = {}
local missing = {}
for i = 1, n do
  local v = redis.call('GET', KEYS[i])
  if v then spent[i] = tonumber(v) else missing[#missing + 1] = i - 1 end
end
if #missing > 0 then return {1, missing, {}} end
for i = 1, n do
  if spent[i] + tonumber(ARGV[3 * i - 1]) > tonumber(ARGV[3 * i - 2]) then return {2, {i - 1}, {}} end
end
local epochs = {}
for i = 1, n do
  redis.call('INCRBY', KEYS[i], ARGV[3 * i - 1])
  redis.call('EXPIRE', KEYS[i], ARGV[3 * i], 'NX')
  epochs[i] = redis.call('GET', KEYS[n + i]) or ''
end
return {0, {}, epochs}
"""

# ARGV: the new epoch, then spent and ttl per counter. Only counters that do not exist are created.
_BUDGET_SEED = """
local n = #KEYS / 2
for i = 1, n do
  if redis.call('SET', KEYS[i], ARGV[2 * i], 'EX', ARGV[2 * i + 1], 'NX') then
    redis.call('SET', KEYS[n + i], ARGV[1], 'EX', ARGV[2 * i + 1])
  end
end
return 0
"""

# ARGV: delta, cost, then the epoch each counter was reserved in.
_BUDGET_SETTLE = """
local n = #KEYS / 2
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local epoch = redis.call('GET', KEYS[n + i]) or ''
    redis.call('INCRBY', KEYS[i], epoch == ARGV[2 + i] and ARGV[1] or ARGV[2])
  end
end
return 0
"""

# Plain counters (emergency spend, alert markers): created by the first add.
_BUDGET_ADJUST = """
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[1])
  redis.call('EXPIRE', KEYS[i], ARGV[i + 1], 'NX')
end
return 0
"""


class RedisBudgetStore:
    """Budget counters shared by every process: one atomic script per admission, seeding and settlement.
    Without persistence a Redis restart (or eviction) loses counters; the limiter then seeds them again
    from the ledger, and each counter's epoch keeps settlements of older reservations from refunding what
    the rebuilt counter never held."""

    def __init__(self, url: str, prefix: str, timeout_s: float = 0.5) -> None:
        self.prefix = prefix
        self._redis = aioredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._reserve = self._redis.register_script(_BUDGET_RESERVE)
        self._seed = self._redis.register_script(_BUDGET_SEED)
        self._settle = self._redis.register_script(_BUDGET_SETTLE)
        self._adjust = self._redis.register_script(_BUDGET_ADJUST)

    def _keys(self, counters: Sequence[Counter]) -> list[str]:
        keys = [self.prefix + c.key for c in counters]
        return keys + [k + "#e" for k in keys]

    async def reserve(self, counters: Sequence[Counter]) -> Reserved:
        args: list[int] = []
        for c in counters:
            args += [c.limit, c.amount, c.ttl_s]
        status, indexes, epochs = await self._reserve(keys=self._keys(counters), args=args)
        if int(status) == 1:
            return Reserved(missing=tuple(int(i) for i in indexes))
        if int(status) == 2:
            return Reserved(refused=int(indexes[0]))
        return Reserved(epochs=tuple(str(e) for e in epochs))

    async def seed(self, counters: Sequence[Counter], spent: Sequence[int]) -> None:
        if not counters:
            return
        args: list[int | str] = [secrets.token_hex(4)]
        for c, value in zip(counters, spent, strict=True):
            args += [value, c.ttl_s]
        await self._seed(keys=self._keys(counters), args=args)

    async def settle(self, counters: Sequence[Counter], epochs: Sequence[str], delta: int, cost: int) -> None:
        if counters and (delta or cost):
            await self._settle(keys=self._keys(counters), args=[delta, cost, *epochs])

    async def adjust(self, counters: Sequence[Counter], delta: int) -> None:
        if counters and delta:
            args = [delta, *(c.ttl_s for c in counters)]
            await self._adjust(keys=[self.prefix + c.key for c in counters], args=args)

    async def spent(self, key: str) -> int:
        value = await self._redis.get(self.prefix + key)
        return int(value or 0)

    async def aclose(self) -> None:
        await self._redis.aclose()
