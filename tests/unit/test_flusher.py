"""``Flusher``: coalesced background flushes that lose nothing at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tollhouse.access.limits import Background


async def test_drain_lets_a_flush_under_way_finish_and_applies_the_rest() -> None:
    applied: list[int] = []
    started = asyncio.Event()

    async def slow_apply(delta: int) -> None:
        started.set()
        await asyncio.sleep(0.2)  # a store round trip in progress when shutdown begins
        applied.append(delta)

    bg = Background(interval_s=0.001)
    bg.add("a", 5, slow_apply)
    bg.add("b", 7, slow_apply)
    await asyncio.wait_for(started.wait(), 5)
    bg.add("c", 11, slow_apply)  # arrived during the flush: left for the next one
    await bg.drain()
    assert sorted(applied) == [5, 7, 11]


async def test_coalesced_deltas_are_applied_once_and_work_continues_after_a_drain() -> None:
    applied: list[tuple[str, int]] = []

    def apply_to(name: str) -> Callable[[int], Awaitable[None]]:
        async def apply(delta: int) -> None:
            applied.append((name, delta))

        return apply

    bg = Background(interval_s=0.01)
    for _ in range(3):
        bg.add("k", 2, apply_to("k"))
    await bg.drain()
    assert applied == [("k", 6)]
    bg.add("k", 1, apply_to("k"))  # after a drain the flusher starts again on demand
    for _ in range(200):
        if len(applied) == 2:
            break
        await asyncio.sleep(0.01)
    assert applied == [("k", 6), ("k", 1)]
