"""``SemanticIndex`` contract, over every backend ``caching.build.build_semantic_index`` builds: memory,
SQLite and the real Redis. Hits need the threshold, the exact scope and the match checks; entries are
replaced by key or text, expire, and are invalidated by tenant and/or model. The persistent backends keep
entries and invalidations across a restart, and a second instance finds what the first one added.

Vectors are synthetic unit vectors with known similarities (the real encoder has suites of its own)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis
from tests.support.stores import REDIS_URL

from tollhouse.caching.build import build_semantic_index
from tollhouse.caching.semantic import F32, SemanticConfig, SemanticIndex, SemanticScope
from tollhouse.caching.shared_index import SharedSemanticIndex
from tollhouse.caching.vectors import MemorySemanticIndex
from tollhouse.settings import RedisSettings
from tollhouse.stores.semantic import SqliteSemanticLog

SCOPE = SemanticScope("key:a", "gpt-x", "ctx")
TEXT = "How do I reset my password?"
Opener = Callable[[], Awaitable[SemanticIndex]]


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, Opener]]:
    """The backend's name and a function starting one more index on the same file / stream."""
    started: list[SemanticIndex] = []
    cfg = SemanticConfig(backend=request.param, sqlite_path=str(tmp_path / "semantic.db"), threshold=0.9)
    redis = None
    if request.param == "redis":
        redis = RedisSettings(url=REDIS_URL, prefix=request.getfixturevalue("redis_prefix"))

    async def start_one() -> SemanticIndex:
        index = build_semantic_index(cfg, redis)
        expected = MemorySemanticIndex if request.param == "memory" else SharedSemanticIndex
        assert isinstance(index, expected)
        if isinstance(index, SharedSemanticIndex) and isinstance(index.log, SqliteSemanticLog):
            index.log.poll_s = 0.05  # (default 2 s) so that following shows within a test's patience
        await index.start()
        started.append(index)
        return index

    yield request.param, start_one
    for index in started:
        await index.aclose()
    if redis is not None:
        r = aioredis.Redis.from_url(REDIS_URL)
        await r.delete(f"{redis.prefix}semantic:log")
        await r.aclose()


_rng = np.random.default_rng(11)


def unit(v: F32) -> F32:
    return (v / np.linalg.norm(v)).astype(np.float32)


def random_vector() -> F32:
    return unit(_rng.normal(size=384).astype(np.float32))


def at_similarity(v: F32, cos: float) -> F32:
    """A unit vector whose cosine with ``v`` is ``cos``."""
    noise = _rng.normal(size=384).astype(np.float32)
    ortho = unit(noise - float(noise @ v) * v)
    return unit(cos * v + np.sqrt(1 - cos * cos) * ortho)


def later(s: float = 3600) -> float:
    return time.time() + s


async def test_threshold_decides(backend: tuple[str, Opener]) -> None:
    _, start = backend
    index = await start()
    v = random_vector()
    await index.add(SCOPE, v, TEXT, "entry-1", later())
    hit = await index.search(SCOPE, at_similarity(v, 0.95), TEXT)
    assert hit is not None and hit.entry_key == "entry-1" and hit.similarity == pytest.approx(0.95, abs=1e-3)
    assert await index.search(SCOPE, at_similarity(v, 0.85), TEXT) is None
    assert index.entries() == 1


async def test_the_best_match_wins(backend: tuple[str, Opener]) -> None:
    _, start = backend
    index = await start()
    v = random_vector()
    await index.add(SCOPE, at_similarity(v, 0.92), TEXT, "close", later())
    await index.add(SCOPE, at_similarity(v, 0.99), TEXT + " ", "closer", later())
    hit = await index.search(SCOPE, v, TEXT)
    assert hit is not None and hit.entry_key == "closer"


@pytest.mark.parametrize(
    "other",
    [
        SemanticScope("key:b", SCOPE.model, SCOPE.context),
        SemanticScope(SCOPE.tenant, "gpt-y", SCOPE.context),
        SemanticScope(SCOPE.tenant, SCOPE.model, "other-ctx"),
    ],
)
async def test_only_the_exact_scope_answers(backend: tuple[str, Opener], other: SemanticScope) -> None:
    _, start = backend
    index = await start()
    v = random_vector()
    await index.add(SCOPE, v, TEXT, "entry-1", later())
    assert await index.search(other, v, TEXT) is None
    assert await index.search(SCOPE, v, TEXT) is not None


async def test_match_checks_refuse_a_near_identical_vector(backend: tuple[str, Opener]) -> None:
    _, start = backend
    index = await start()
    v = random_vector()
    await index.add(SCOPE, v, "What happened in 1994?", "entry-1", later())
    assert await index.search(SCOPE, v, "What happened in 1995?") is None  # numbers differ
    assert await index.search(SCOPE, v, "What happened in 1994?") is not None


async def test_an_entry_replaces_one_with_the_same_key_or_text(backend: tuple[str, Opener]) -> None:
    _, start = backend
    index = await start()
    v, w = random_vector(), random_vector()
    await index.add(SCOPE, v, TEXT, "k1", later())
    await index.add(SCOPE, w, "Another question entirely?", "k1", later())  # same key
    assert index.entries() == 1
    assert await index.search(SCOPE, v, TEXT) is None
    await index.add(SCOPE, v, "Another question entirely?", "k2", later())  # same text
    assert index.entries() == 1
    hit = await index.search(SCOPE, v, "Another question entirely?")
    assert hit is not None and hit.entry_key == "k2"


async def test_entries_expire(backend: tuple[str, Opener]) -> None:
    _, start = backend
    index = await start()
    v = random_vector()
    await index.add(SCOPE, v, TEXT, "short", later(0.1))
    await asyncio.sleep(0.2)
    assert await index.search(SCOPE, v, TEXT) is None
    await index.add(SCOPE, v, TEXT, "expired", time.time() - 1)
    assert await index.search(SCOPE, v, TEXT) is None


async def test_invalidation_by_tenant_model_and_all(backend: tuple[str, Opener]) -> None:
    _, start = backend
    index = await start()
    v = random_vector()
    scopes = [
        SemanticScope("key:a", "m1", "c"),
        SemanticScope("key:a", "m2", "c"),
        SemanticScope("key:b", "m1", "c"),
        SemanticScope("key:b", "m2", "c"),
    ]
    for i, s in enumerate(scopes):
        await index.add(s, v, TEXT, f"e{i}", later())
    assert await index.invalidate(tenant="key:a", model="m1") == 1
    assert await index.search(scopes[0], v, TEXT) is None
    assert await index.invalidate(model="m2") == 2
    assert await index.search(scopes[2], v, TEXT) is not None
    assert await index.invalidate(tenant="key:zzz") == 0
    assert await index.invalidate() == 1
    assert index.entries() == 0


# The memory index lives and dies with its process.
@pytest.mark.parametrize("backend", ["sqlite", "redis"], indirect=True)
async def test_entries_and_invalidations_survive_a_restart(backend: tuple[str, Opener]) -> None:
    _, start = backend
    first = await start()
    v, w = random_vector(), random_vector()
    await first.add(SCOPE, v, TEXT, "kept", later())
    await first.add(SemanticScope("key:gone", "m", "c"), w, TEXT, "dropped", later())
    await first.invalidate(tenant="key:gone")
    await first.aclose()

    second = await start()
    assert second.entries() == 1
    hit = await second.search(SCOPE, at_similarity(v, 0.97), TEXT)
    assert hit is not None and hit.entry_key == "kept"
    assert await second.search(SemanticScope("key:gone", "m", "c"), w, TEXT) is None


# The memory index is per process.
@pytest.mark.parametrize("backend", ["sqlite", "redis"], indirect=True)
async def test_a_second_instance_finds_what_the_first_added(backend: tuple[str, Opener]) -> None:
    name, start = backend
    a, b = await start(), await start()
    assert isinstance(a, SharedSemanticIndex) and isinstance(b, SharedSemanticIndex)
    v = random_vector()
    await a.add(SCOPE, v, TEXT, "entry-1", later())
    await within(lambda: b.entries() == 1)
    hit = await b.search(SCOPE, v, TEXT)
    assert hit is not None and hit.entry_key == "entry-1"
    assert b.applied == 1 and a.applied == 0  # an instance never applies its own entry twice
    if name == "redis":  # the stream carries invalidations too
        await b.invalidate(tenant=SCOPE.tenant)
        await within(lambda: a.entries() == 0)


async def within(cond: Callable[[], bool], bound_s: float = 3.0) -> None:
    deadline = time.monotonic() + bound_s
    while not cond():
        assert time.monotonic() < deadline, f"not within {bound_s} s"
        await asyncio.sleep(0.01)
