"""``RateLimitStore`` contract, over the in-process and the real Redis backends."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import pytest
from tests.support.stores import REDIS_URL

from tollhouse.stores.base import Bucket, RateLimitStore
from tollhouse.stores.memory import MemoryRateLimitStore
from tollhouse.stores.redis import RedisRateLimitStore


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[RateLimitStore]:
    s: RateLimitStore
    if request.param == "memory":
        s = MemoryRateLimitStore()
    else:
        s = RedisRateLimitStore(REDIS_URL, request.getfixturevalue("redis_prefix"))
    yield s
    await s.aclose()


async def test_burst_up_to_capacity_then_refused_with_retry_after(store: RateLimitStore) -> None:
    b = Bucket("{k}:rpm", 60, 1)  # one per second
    for i in range(60):
        d = await store.reserve([b])
        assert d.allowed, i
    d = await store.reserve([b])
    assert not d.allowed
    assert 0 < d.retry_after_s <= 1.05
    assert d.states[0].remaining == 0


async def test_all_or_nothing_across_buckets(store: RateLimitStore) -> None:
    rpm, tpm = Bucket("{k}:rpm", 10, 1), Bucket("{k}:tpm", 100, 80)
    assert (await store.reserve([rpm, tpm])).allowed
    d = await store.reserve([rpm, tpm])  # tokens short: the request bucket must not be charged
    assert not d.allowed
    assert (await store.reserve([Bucket("{k}:tpm", 100, 20)])).allowed
    d = await store.reserve([rpm])
    assert d.allowed and d.states[0].remaining == 8


async def test_amount_above_capacity_can_never_pass(store: RateLimitStore) -> None:
    d = await store.reserve([Bucket("{k}:tpm", 100, 101)])
    assert not d.allowed and math.isinf(d.retry_after_s)


async def test_adjust_refunds_and_charges(store: RateLimitStore) -> None:
    t = Bucket("{k}:tpm", 1000, 900)
    assert (await store.reserve([t])).allowed
    await store.adjust(t.key, 1000, 800)  # used 100 of the 900 reserved
    assert (await store.reserve([Bucket(t.key, 1000, 850)])).allowed
    await store.adjust(t.key, 1000, -500)  # used 500 more than reserved: level goes negative
    d = await store.reserve([Bucket(t.key, 1000, 1)])
    assert not d.allowed and d.retry_after_s > 20
    await store.adjust(t.key, 1000, 10_000)  # capped at capacity
    d = await store.reserve([Bucket(t.key, 1000, 1000)])
    assert d.allowed


async def test_refills_over_time(store: RateLimitStore) -> None:
    b = Bucket("{k}:fast", 600, 10)  # 10 per second
    assert (await store.reserve([Bucket(b.key, 600, 600)])).allowed
    assert not (await store.reserve([b])).allowed
    await asyncio.sleep(1.1)
    assert (await store.reserve([b])).allowed


async def test_concurrent_reservations_never_exceed_capacity(store: RateLimitStore) -> None:
    b = Bucket("{k}:conc", 50, 1)
    results = await asyncio.gather(*(store.reserve([b]) for _ in range(80)))
    assert sum(d.allowed for d in results) in (50, 51)  # at most one refilled during the run
