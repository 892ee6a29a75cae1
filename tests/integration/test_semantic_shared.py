"""The shared semantic index on a real Redis: two instances (two gateway processes) see each other's entries
and invalidations within a bounded time; a late starter replays the stream; the stream is trimmed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
import pytest
import redis.asyncio as aioredis
from tests.support.stores import REDIS_URL

from tollhouse.caching.embedder import EncoderEmbedder
from tollhouse.caching.semantic import SemanticScope
from tollhouse.caching.shared_index import SharedSemanticIndex
from tollhouse.caching.vectors import MemorySemanticIndex
from tollhouse.stores.semantic import RedisSemanticLog

pytestmark = pytest.mark.slow
SCOPE = SemanticScope("key:key_a", "gpt-x", "c0ffee")
RESET = "How do I reset my password?"
RESET_2 = "How can I reset my password?"
BOUND_S = 2.0  # propagation bound asserted (measured: a few ms)


def redis_index(
    url: str, prefix: str, *, threshold: float, max_entries: int = 100_000, block_ms: int = 1000
) -> SharedSemanticIndex:
    log = RedisSemanticLog(url, prefix, max_entries=max_entries, block_ms=block_ms)
    return SharedSemanticIndex(MemorySemanticIndex(threshold=threshold, max_entries=max_entries), log)


@pytest.fixture(scope="module")
def embedder() -> EncoderEmbedder:
    return EncoderEmbedder()


@pytest.fixture
async def pair(redis_prefix: str) -> AsyncIterator[tuple[SharedSemanticIndex, SharedSemanticIndex]]:
    a = redis_index(REDIS_URL, redis_prefix, threshold=0.9, block_ms=200)
    b = redis_index(REDIS_URL, redis_prefix, threshold=0.9, block_ms=200)
    await a.start()
    await b.start()
    yield a, b
    await a.aclose()
    await b.aclose()
    r = aioredis.Redis.from_url(REDIS_URL)
    await r.delete(f"{redis_prefix}semantic:log")
    await r.aclose()


async def within(cond: Callable[[], Awaitable[bool]], bound: float = BOUND_S) -> float:
    t0 = time.monotonic()
    while not await cond():
        if time.monotonic() - t0 > bound:
            raise AssertionError(f"not within {bound} s")
        await asyncio.sleep(0.002)
    return time.monotonic() - t0


async def test_an_entry_added_by_one_is_found_by_the_other(
    pair: tuple[SharedSemanticIndex, SharedSemanticIndex], embedder: EncoderEmbedder
) -> None:
    a, b = pair
    stored, query = await embedder.embed(RESET), await embedder.embed(RESET_2)
    assert await b.search(SCOPE, query, RESET_2) is None
    await a.add(SCOPE, stored, RESET, "entry-1", time.time() + 3600)

    async def b_hits() -> bool:
        hit = await b.search(SCOPE, query, RESET_2)
        return hit is not None and hit.entry_key == "entry-1"

    await within(b_hits)
    assert a.entries() == b.entries() == 1
    assert a.applied == 0  # its own entry is not applied twice


async def test_invalidation_propagates(
    pair: tuple[SharedSemanticIndex, SharedSemanticIndex], embedder: EncoderEmbedder
) -> None:
    a, b = pair
    vec = await embedder.embed(RESET)
    keep = SemanticScope("key:key_b", SCOPE.model, SCOPE.context)
    await a.add(SCOPE, vec, RESET, "entry-1", time.time() + 3600)
    await a.add(keep, vec, RESET, "entry-2", time.time() + 3600)

    async def b_has_both() -> bool:
        return b.entries() == 2

    await within(b_has_both)
    assert await b.invalidate(tenant="key:key_a") == 1

    async def a_dropped() -> bool:
        return await a.search(SCOPE, vec, RESET) is None

    await within(a_dropped)
    assert await a.search(keep, vec, RESET) is not None
    await b.invalidate()

    async def a_empty() -> bool:
        return a.entries() == 0

    await within(a_empty)


async def test_a_late_starter_replays_the_stream_in_order(
    redis_prefix: str, embedder: EncoderEmbedder
) -> None:
    vec = await embedder.embed(RESET)
    a = redis_index(REDIS_URL, redis_prefix, threshold=0.9)
    await a.start()
    try:
        await a.add(SCOPE, vec, RESET, "dropped", time.time() + 3600)
        await a.invalidate(model=SCOPE.model)
        await a.add(SCOPE, vec, RESET, "kept", time.time() + 3600)
        await a.add(SemanticScope("key:z", "m", "c"), vec, RESET, "expired", time.time() + 0.05)
        await asyncio.sleep(0.1)
        late = redis_index(REDIS_URL, redis_prefix, threshold=0.9)
        await late.start()
        try:
            assert late.entries() == 1
            hit = await late.search(SCOPE, vec, RESET)
            assert hit is not None and hit.entry_key == "kept"
        finally:
            await late.aclose()
    finally:
        await a.aclose()


async def test_stream_is_trimmed_near_maxlen(redis_prefix: str) -> None:
    a = redis_index(REDIS_URL, redis_prefix, threshold=0.9, max_entries=50)
    await a.start()
    r = aioredis.Redis.from_url(REDIS_URL)
    try:
        rng = np.random.default_rng(1)
        for n in range(400):
            v = rng.normal(size=384).astype(np.float32)
            await a.add(SCOPE, v / np.linalg.norm(v), f"text {n}", f"e{n}", time.time() + 3600)
        assert a.entries() == 50
        length = await r.xlen(f"{redis_prefix}semantic:log")
        assert 50 <= length < 400  # approximate MAXLEN trims whole macro-nodes
    finally:
        await a.aclose()
        await r.delete(f"{redis_prefix}semantic:log")
        await r.aclose()
