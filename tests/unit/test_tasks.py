"""``tasks.cancel`` finishes a task even when the task absorbs a cancellation (as redis-py's blocking
reads sometimes do), and still surfaces a task's own failure."""

from __future__ import annotations

import asyncio

import pytest

from tollhouse import tasks


async def test_a_task_that_swallows_one_cancellation_is_cancelled_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks, "RECANCEL_S", 0.05)
    absorbed = 0

    async def follower() -> None:
        nonlocal absorbed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if absorbed:
                    raise
                absorbed += 1  # the first cancellation is swallowed; the loop blocks again

    t = asyncio.create_task(follower())
    await asyncio.sleep(0)
    await asyncio.wait_for(tasks.cancel(t), timeout=2)
    assert t.cancelled() and absorbed == 1


async def test_a_failed_task_still_raises() -> None:
    async def boom() -> None:
        raise RuntimeError("boom")

    t = asyncio.create_task(boom())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await tasks.cancel(t)


async def test_none_is_a_no_op() -> None:
    await tasks.cancel(None)
