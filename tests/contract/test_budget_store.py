"""``BudgetStore`` contract, over the in-process and the real Redis backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis
from tests.support.stores import REDIS_URL

from tollhouse.stores.base import BudgetStore, Counter, Reserved
from tollhouse.stores.memory import MemoryBudgetStore
from tollhouse.stores.redis import RedisBudgetStore

Lose = Callable[[], Awaitable[None]]


@pytest.fixture(params=["memory", "redis"])
async def store_and_loss(request: pytest.FixtureRequest) -> AsyncIterator[tuple[BudgetStore, Lose]]:
    """The store, and what losing every counter looks like (a process or Redis restart, an eviction)."""
    if request.param == "memory":
        mem = MemoryBudgetStore()

        async def lose_memory() -> None:
            mem.__init__()  # type: ignore[misc]  # a restarted process starts empty

        yield mem, lose_memory
        return
    prefix = request.getfixturevalue("redis_prefix")
    store = RedisBudgetStore(REDIS_URL, prefix)
    admin = aioredis.Redis.from_url(REDIS_URL)

    async def lose_redis() -> None:
        keys = [k async for k in admin.scan_iter(match=prefix + "*")]
        if keys:
            await admin.delete(*keys)

    yield store, lose_redis
    await lose_redis()
    await admin.aclose()
    await store.aclose()


@pytest.fixture
def store(store_and_loss: tuple[BudgetStore, Lose]) -> BudgetStore:
    return store_and_loss[0]


async def test_a_counter_exists_only_once_seeded(store: BudgetStore) -> None:
    day, month = Counter("d", 100, 40, 60), Counter("m", 1000, 40, 60)
    assert await store.reserve([day, month]) == Reserved(missing=(0, 1))
    assert await store.spent("d") == 0  # nothing was taken
    await store.seed([month], [500])
    assert await store.reserve([day, month]) == Reserved(missing=(0,))
    await store.seed([day, month], [10, 0])  # an existing counter is left alone
    got = await store.reserve([day, month])
    assert got.refused is None and not got.missing and len(got.epochs) == 2
    assert await store.spent("d") == 50 and await store.spent("m") == 540


async def test_reserve_within_limit_all_or_nothing(store: BudgetStore) -> None:
    day, month = Counter("d", 100, 40, 60), Counter("m", 1000, 40, 60)
    await store.seed([day, month], [0, 0])
    assert (await store.reserve([day, month])).refused is None
    assert (await store.reserve([day, month])).refused is None
    assert (await store.reserve([month, day])).refused == 1  # 120 > 100: refused by the second, nothing added
    assert await store.spent("d") == 80 and await store.spent("m") == 80


async def test_settle_corrects_a_reservation_both_ways(store: BudgetStore) -> None:
    c = Counter("s", 100, 90, 60)
    await store.seed([c], [0])
    got = await store.reserve([c])
    await store.settle([c], got.epochs, -60, 30)  # actual cost 30
    assert await store.spent("s") == 30
    await store.settle([c], got.epochs, 5, 35)
    assert await store.spent("s") == 35
    assert (await store.reserve([Counter("s", 100, 65, 60)])).refused is None
    assert (await store.reserve([Counter("s", 100, 1, 60)])).refused == 0


async def test_a_rebuilt_counter_gets_the_cost_not_the_refund(
    store_and_loss: tuple[BudgetStore, Lose],
) -> None:
    store, lose = store_and_loss
    c = Counter("r", 1000, 90, 60)
    await store.seed([c], [0])
    old = await store.reserve([c])
    await lose()
    await store.settle([c], old.epochs, -60, 30)  # lost: nothing to correct, the rebuild reads the ledger
    assert (await store.reserve([c])).missing == (0,)
    await store.seed([c], [200])  # rebuilt from the ledger, without the request still in flight
    await store.settle([c], old.epochs, -60, 30)  # that request's settlement adds its actual cost
    assert await store.spent("r") == 230


async def test_plain_counters_are_created_by_adjust(store: BudgetStore) -> None:
    marker = Counter("alert:x", 0, 0, 60)
    await store.adjust([marker], 1)
    assert await store.spent("alert:x") == 1
    await store.adjust([marker], 2)
    assert await store.spent("alert:x") == 3


async def test_concurrent_reservations_never_exceed_the_limit(store: BudgetStore) -> None:
    c = Counter("c", 1000, 30, 60)
    await store.seed([c], [0])
    results = await asyncio.gather(*(store.reserve([c]) for _ in range(100)))
    assert sum(r.refused is None for r in results) == 33
    assert await store.spent("c") == 990
