"""``IdempotencyStore`` contract, over the in-process store and the real Redis.

Each test gets two handles on one store: the same object in process, two clients on one key prefix with
Redis (two gateway processes). Elections, waits, releases and expiry must behave the same through both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from tests.support.stores import REDIS_URL

from tollhouse.settings import IdempotencySettings, RedisSettings
from tollhouse.stores.build import idempotency_store
from tollhouse.stores.idempotency import (
    IdempotencyStore,
    MemoryIdempotencyStore,
    RedisIdempotencyStore,
    StoredResponse,
)

TTL_S = 1.0
# Redis: how long a runner that died holds its key. Long, so that a slow machine never sees a live runner's
# key expire mid-test (expiry has its own test, with a short lock).
LOCK_S = 30.0
Pair = tuple[IdempotencyStore, IdempotencyStore]


@pytest.fixture(params=["memory", "redis"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    cfg = IdempotencySettings(store=request.param, ttl_s=TTL_S, wait_s=LOCK_S, max_entries=100)
    if request.param == "memory":
        one = idempotency_store(cfg, RedisSettings())
        assert isinstance(one, MemoryIdempotencyStore)
        yield one, one
        await one.aclose()
        return
    prefix = request.getfixturevalue("redis_prefix")
    redis = RedisSettings(url=REDIS_URL, prefix=prefix)
    a, b = idempotency_store(cfg, redis), idempotency_store(cfg, redis)
    assert isinstance(a, RedisIdempotencyStore)
    yield a, b
    await a.aclose()
    await b.aclose()
    r = aioredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in r.scan_iter(f"{prefix}*")]
    if keys:
        await r.delete(*keys)
    await r.aclose()


def response(body: bytes = b'{"id":"chatcmpl-1"}\n{"more":"lines"}') -> StoredResponse:
    headers = [(b"content-type", b"application/json"), (b"x-odd", b"\x00\xff:\n")]
    return StoredResponse(200, headers, body, "fingerprint-1")


async def test_one_runner_among_concurrent_duplicates(pair: Pair) -> None:
    a, b = pair
    claims = await asyncio.gather(*(s.begin("k") for s in (a, b) * 10))
    assert claims.count(True) == 1
    assert await a.begin("other") is True  # keys are independent
    await a.finish("other", None)


async def test_the_result_is_stored_exactly_and_shared(pair: Pair) -> None:
    a, b = pair
    assert await b.get("k") is None
    assert await a.begin("k") is True
    await a.finish("k", response())
    assert await b.get("k") == response()  # status, headers (any bytes), body with new lines, fingerprint
    assert await a.get("k") == response()


async def test_waiters_get_the_runners_result(pair: Pair) -> None:
    a, b = pair
    assert await a.begin("k") is True
    assert await b.begin("k") is False
    waiters = [asyncio.create_task(s.wait("k", 5)) for s in (b, b, a)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiters)  # nothing yet: they wait
    await a.finish("k", response())
    assert await asyncio.gather(*waiters) == [response()] * 3


async def test_a_runner_that_stores_nothing_releases_the_key(pair: Pair) -> None:
    a, b = pair
    assert await a.begin("k") is True
    waiter = asyncio.create_task(b.wait("k", 5))
    await asyncio.sleep(0.02)
    await a.finish("k", None)
    assert await waiter is None
    assert await b.get("k") is None
    assert await b.begin("k") is True  # the next try runs the request
    await b.finish("k", None)


async def test_a_wait_times_out_with_none(pair: Pair) -> None:
    a, b = pair
    assert await a.begin("k") is True
    t0 = time.monotonic()
    assert await b.wait("k", 0.1) is None  # the runner still holds the key (for LOCK_S): timed out
    assert 0.08 <= time.monotonic() - t0 < LOCK_S / 10
    await a.finish("k", None)


async def test_results_expire_after_the_ttl(pair: Pair) -> None:
    a, b = pair
    assert await a.begin("k") is True
    await a.finish("k", response())
    assert await b.get("k") is not None
    await asyncio.sleep(TTL_S + 0.1)
    assert await b.get("k") is None
    assert await a.get("k") is None


async def test_finishing_releases_only_its_own_key(pair: Pair) -> None:
    a, b = pair
    assert await a.begin("x") is True
    assert await a.begin("y") is True
    waiter = asyncio.create_task(b.wait("y", 0.3))
    await a.finish("x", response())
    assert await waiter is None  # "y" is still running: its waiter ran out of time
    assert await b.begin("y") is False
    await a.finish("y", None)


async def test_memory_keeps_at_most_max_entries() -> None:
    store = MemoryIdempotencyStore(60, 2)
    for k in ("a", "b", "c"):
        assert await store.begin(k) is True
        await store.finish(k, response())
    assert await store.get("a") is None
    assert await store.get("b") == await store.get("c") == response()


async def test_redis_lock_of_a_dead_runner_expires(redis_prefix: str) -> None:
    a = RedisIdempotencyStore(REDIS_URL, redis_prefix, ttl_s=TTL_S, lock_s=0.2)
    b = RedisIdempotencyStore(REDIS_URL, redis_prefix, ttl_s=TTL_S, lock_s=0.2)
    try:
        assert await a.begin("k") is True  # and never finishes: its process died
        assert await b.begin("k") is False
        assert await b.wait("k", 2) is None  # released by expiry, not by the full timeout
        assert await b.begin("k") is True
        await b.finish("k", None)
    finally:
        await a.aclose()
        await b.aclose()
