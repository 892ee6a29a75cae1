"""``SemanticLog`` contract, over SQLite and the real Redis: what is appended is loaded back by a new
instance (vectors bit for bit), expired rows and dropped entries stay out, replacement and invalidation
replay in order, and ``read`` hands an instance what the others changed, never its own changes.

Both backends are opened through ``stores.build.semantic_log``; ``memory`` has no log (None)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis
from tests.support.stores import REDIS_URL

from tollhouse.caching.semantic import SemanticConfig
from tollhouse.settings import RedisSettings
from tollhouse.stores.build import semantic_log
from tollhouse.stores.semantic import (
    READ_COUNT,
    RedisSemanticLog,
    SemanticChange,
    SemanticDrop,
    SemanticLog,
    SemanticRow,
    SqliteSemanticLog,
)

Opener = Callable[[], Awaitable[SemanticLog]]


@pytest.fixture(params=["sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, Opener]]:
    """The backend's name and a function opening one more instance on the same file / stream."""
    opened: list[SemanticLog] = []
    cfg = SemanticConfig(backend=request.param, sqlite_path=str(tmp_path / "semantic.db"), max_entries=5000)
    redis = None
    if request.param == "redis":
        redis = RedisSettings(url=REDIS_URL, prefix=request.getfixturevalue("redis_prefix"))

    async def open_one() -> SemanticLog:
        log = semantic_log(cfg, redis)
        assert isinstance(log, SqliteSemanticLog if request.param == "sqlite" else RedisSemanticLog)
        if isinstance(log, SqliteSemanticLog):
            log.poll_s = 0.2
        await log.open()
        opened.append(log)
        return log

    yield request.param, open_one
    for log in opened:
        await log.aclose()
    if redis is not None:
        r = aioredis.Redis.from_url(REDIS_URL)
        await r.delete(f"{redis.prefix}semantic:log")
        await r.aclose()


def test_memory_has_no_log() -> None:
    assert semantic_log(SemanticConfig(backend="memory")) is None
    with pytest.raises(ValueError, match="Redis URL"):
        semantic_log(SemanticConfig(backend="redis"))


_rng = np.random.default_rng(7)


def row(
    key: str, *, tenant: str = "key:a", model: str = "m", text: str | None = None, ttl: float = 3600
) -> SemanticRow:
    v = _rng.normal(size=384).astype(np.float32)
    return SemanticRow(
        tenant, model, "ctx", text or f"text of {key}", key, time.time() + ttl, v / np.linalg.norm(v)
    )


def same(a: SemanticRow, b: SemanticRow) -> bool:
    return (a.tenant, a.model, a.context, a.text, a.entry_key, a.expires_at) == (
        b.tenant,
        b.model,
        b.context,
        b.text,
        b.entry_key,
        b.expires_at,
    ) and np.array_equal(a.vector, b.vector)


def replay(changes: Iterable[SemanticChange]) -> dict[str, SemanticRow]:
    """Apply changes as the index does: an entry replaces one of its scope with the same key or text."""
    state: list[SemanticRow] = []
    for c in changes:
        if isinstance(c, SemanticDrop):
            state = [
                r
                for r in state
                if not (
                    (c.tenant is None or r.tenant == c.tenant) and (c.model is None or r.model == c.model)
                )
            ]
        else:
            scope = (c.tenant, c.model, c.context)
            state = [
                r
                for r in state
                if (r.tenant, r.model, r.context) != scope
                or (r.entry_key != c.entry_key and r.text != c.text)
            ]
            state.append(c)
    return {r.entry_key: r for r in state}


async def loaded(log: SemanticLog) -> list[SemanticChange]:
    return [c async for page in log.load() for c in page]


async def test_appended_rows_are_loaded_by_a_new_instance(backend: tuple[str, Opener]) -> None:
    _, open_log = backend
    writer = await open_log()
    rows = [row("a"), row("b", tenant="team:r&d"), row("c", model="gpt-4o*")]
    for r in rows:
        await writer.append(r)
    await writer.aclose()
    state = replay(await loaded(await open_log()))
    assert sorted(state) == ["a", "b", "c"]
    assert all(same(state[r.entry_key], r) for r in rows)
    assert state["a"].vector.dtype == np.float32


async def test_expired_rows_stay_out(backend: tuple[str, Opener]) -> None:
    _, open_log = backend
    writer = await open_log()
    await writer.append(row("short", ttl=0.1))
    await writer.append(row("long"))
    await asyncio.sleep(0.2)
    assert sorted(replay(await loaded(await open_log()))) == ["long"]


async def test_replacement_and_invalidation_replay_in_order(backend: tuple[str, Opener]) -> None:
    _, open_log = backend
    log = await open_log()
    await log.append(row("k1", text="first"))
    await log.append(row("k1", text="second"))  # same key: replaces
    await log.append(row("k2", text="second"))  # same text: replaces
    await log.append(row("gone", tenant="key:b"))
    await log.drop("key:b", None)
    await log.append(row("back", tenant="key:b"))  # after the drop: stays
    await log.append(row("m2", model="m2"))
    await log.drop(None, "m2")
    await log.append(row("everyone", tenant="key:c"))
    await log.drop("key:c", "m")
    state = replay(await loaded(await open_log()))
    assert sorted(state) == ["back", "k2"]
    assert state["k2"].text == "second"


async def test_everything_is_loaded_across_pages(backend: tuple[str, Opener]) -> None:
    _, open_log = backend
    log = await open_log()
    n = READ_COUNT + 50
    for i in range(n):
        await log.append(row(f"e{i}"))
    pages = [page async for page in (await open_log()).load()]
    keys = [c.entry_key for page in pages for c in page if isinstance(c, SemanticRow)]
    assert keys == [f"e{i}" for i in range(n)]  # oldest first


async def test_read_returns_what_others_changed_never_its_own(backend: tuple[str, Opener]) -> None:
    name, open_log = backend
    a, b = await open_log(), await open_log()
    await loaded(a)
    await loaded(b)
    assert await b.read(wait=False) == []
    r1 = row("r1")
    await a.append(r1)
    got = await b.read(wait=False)
    assert len(got) == 1 and isinstance(got[0], SemanticRow) and same(got[0], r1)
    assert await a.read(wait=False) == []  # its own
    assert await b.read(wait=False) == []  # once only
    await b.append(row("r2"))
    assert [c.entry_key for c in await a.read(wait=False) if isinstance(c, SemanticRow)] == ["r2"]
    await a.drop("key:a", None)
    # Redis tells every instance about an invalidation; SQLite deletes the rows (seen at the next load).
    assert await b.read(wait=False) == ([SemanticDrop("key:a", None)] if name == "redis" else [])
    assert replay(await loaded(await open_log())) == {}


async def test_read_skips_rows_that_expired_meanwhile(backend: tuple[str, Opener]) -> None:
    _, open_log = backend
    a, b = await open_log(), await open_log()
    await loaded(b)
    await a.append(row("short", ttl=0.05))
    await a.append(row("long"))
    await asyncio.sleep(0.1)
    assert [c.entry_key for c in await b.read(wait=False) if isinstance(c, SemanticRow)] == ["long"]


async def test_a_waiting_read_returns_a_change_made_meanwhile(backend: tuple[str, Opener]) -> None:
    _, open_log = backend
    a, b = await open_log(), await open_log()
    await loaded(b)
    reader = asyncio.create_task(b.read(wait=True))
    await asyncio.sleep(0.02)
    await a.append(row("late"))
    got = await asyncio.wait_for(reader, 3)  # Redis: at once; SQLite: at the end of its poll interval
    assert [c.entry_key for c in got if isinstance(c, SemanticRow)] == ["late"]
