"""``BudgetStore`` contract, over the in-process and the real Redis backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from tests.support.stores import REDIS_URL

from tollhouse.stores.base import BudgetStore, Counter
from tollhouse.stores.memory import MemoryBudgetStore
from tollhouse.stores.redis import RedisBudgetStore


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[BudgetStore]:
    s: BudgetStore
    if request.param == "memory":
        s = MemoryBudgetStore()
    else:
        s = RedisBudgetStore(REDIS_URL, request.getfixturevalue("redis_prefix"))
    yield s
    await s.aclose()


async def test_reserve_within_limit_all_or_nothing(store: BudgetStore) -> None:
    day, month = Counter("d", 100, 40, 60), Counter("m", 1000, 40, 60)
    assert await store.reserve([day, month]) is None
    assert await store.reserve([day, month]) is None
    assert await store.reserve([month, day]) == 1  # 120 > 100: refused by the second, nothing added
    assert await store.spent("d") == 80 and await store.spent("m") == 80


async def test_adjust_settles_both_ways(store: BudgetStore) -> None:
    c = Counter("s", 100, 90, 60)
    assert await store.reserve([c]) is None
    await store.adjust([c], -60)  # actual cost 30
    assert await store.spent("s") == 30
    await store.adjust([c], 5)
    assert await store.spent("s") == 35
    assert await store.reserve([Counter("s", 100, 65, 60)]) is None
    assert await store.reserve([Counter("s", 100, 1, 60)]) == 0


async def test_concurrent_reservations_never_exceed_the_limit(store: BudgetStore) -> None:
    c = Counter("c", 1000, 30, 60)
    results = await asyncio.gather(*(store.reserve([c]) for _ in range(100)))
    assert sum(r is None for r in results) == 33
    assert await store.spent("c") == 990
