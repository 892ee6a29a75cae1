"""``BreakerState`` contract, over its one backend, the real Redis: an open verdict is recorded for its
TTL and a closed one clears it, every other instance hears each transition (never its own), probe claims
count across instances within one window and start over after it or after a publish.

Opened through ``stores.build.breaker_state`` (``memory`` keeps circuits per process: no store)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from tests.support.stores import REDIS_URL

from tollhouse.settings import BreakerSettings, RedisSettings
from tollhouse.stores.breakers import BreakerState, CircuitEvent
from tollhouse.stores.build import breaker_state


@pytest.fixture
async def pair(redis_prefix: str) -> AsyncIterator[tuple[BreakerState, BreakerState]]:
    """Two processes' views of one fleet's circuit state."""
    redis = RedisSettings(url=REDIS_URL, prefix=redis_prefix)
    a = breaker_state(BreakerSettings(store="redis"), redis)
    b = breaker_state(BreakerSettings(store="redis"), redis)
    assert a is not None and b is not None
    yield a, b
    await a.aclose()
    await b.aclose()
    r = aioredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in r.scan_iter(f"{redis_prefix}*")]
    if keys:
        await r.delete(*keys)
    await r.aclose()


def test_memory_has_no_shared_state() -> None:
    assert breaker_state(BreakerSettings(store="memory"), RedisSettings()) is None


class Heard:
    """What one instance's ``follow`` delivered, in order."""

    def __init__(self, state: BreakerState) -> None:
        self.events: list[CircuitEvent] = []
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(state.follow(self.events.append, self.ready))

    async def until(self, n: int) -> list[CircuitEvent]:
        deadline = asyncio.get_running_loop().time() + 3
        while len(self.events) < n:
            assert asyncio.get_running_loop().time() < deadline, f"{n} events not heard within 3 s"
            await asyncio.sleep(0.005)
        return self.events

    async def stop(self) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


async def test_open_is_recorded_for_its_ttl_and_closed_clears_it(
    pair: tuple[BreakerState, BreakerState],
) -> None:
    a, b = pair
    assert await b.open_ms(["x", "y"]) == [0, 0]
    await a.publish("x", "open", 30_000)
    ms = await b.open_ms(["x", "y"])
    assert 29_000 < ms[0] <= 30_000 and ms[1] == 0
    await a.publish("y", "open", 100)
    await asyncio.sleep(0.2)
    assert (await b.open_ms(["y"]))[0] == 0  # expired with its cooldown
    await b.publish("x", "closed", 0)
    assert await a.open_ms(["x"]) == [0]
    assert await a.open_ms([]) == []


async def test_others_hear_every_transition_in_order_never_their_own(
    pair: tuple[BreakerState, BreakerState],
) -> None:
    a, b = pair
    heard_a, heard_b = Heard(a), Heard(b)
    try:
        await asyncio.wait_for(asyncio.gather(heard_a.ready.wait(), heard_b.ready.wait()), 3)
        await a.publish("dep one", "open", 5000)  # names may hold spaces
        await a.publish("dep one", "closed", 0)
        await b.publish("z", "open", 1000)
        assert await heard_b.until(2) == [
            CircuitEvent("dep one", "open", 5000),
            CircuitEvent("dep one", "closed", 0),
        ]
        assert await heard_a.until(1) == [CircuitEvent("z", "open", 1000)]
        await asyncio.sleep(0.05)
        assert len(heard_a.events) == 1 and len(heard_b.events) == 2
    finally:
        await heard_a.stop()
        await heard_b.stop()


async def test_probe_claims_count_across_instances_per_window(
    pair: tuple[BreakerState, BreakerState],
) -> None:
    a, b = pair
    assert [await s.claim_probe("x", 200) for s in (a, b, a)] == [1, 2, 3]
    assert await b.claim_probe("other", 200) == 1  # per circuit
    await asyncio.sleep(0.3)
    assert await b.claim_probe("x", 200) == 1  # a new window
    assert await a.claim_probe("x", 200) == 2
    await a.publish("x", "closed", 0)  # a verdict starts the count over
    assert await b.claim_probe("x", 200) == 1


async def test_claims_race_to_distinct_counts(pair: tuple[BreakerState, BreakerState]) -> None:
    a, b = pair
    counts = await asyncio.gather(*(s.claim_probe("x", 5000) for s in (a, b) * 10))
    assert sorted(counts) == list(range(1, 21))
