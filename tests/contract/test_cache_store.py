"""``CacheStore`` contract, over the in-process LRU, SQLite and the real Redis backends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.stores import REDIS_URL

from tollhouse.stores.cache import CacheStore, LRUStore, RedisCacheStore, SqliteCacheStore


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CacheStore]:
    s: CacheStore
    if request.param == "memory":
        s = LRUStore(1 << 20)
    elif request.param == "sqlite":
        s = SqliteCacheStore(str(tmp_path / "cache.db"))
    else:
        s = RedisCacheStore(REDIS_URL, request.getfixturevalue("redis_prefix"))
    await s.open()
    yield s
    await s.invalidate()
    await s.aclose()


async def test_get_set_replace(store: CacheStore) -> None:
    assert await store.get("k") is None
    await store.set("k", b"one", 60, "key:a", "m")
    assert await store.get("k") == b"one"
    await store.set("k", b"two", 60, "key:a", "m")
    assert await store.get("k") == b"two"
    assert await store.entries() == 1


async def test_ttl_expiry(store: CacheStore) -> None:
    ttl = 1.0  # long enough that a loaded machine still reads the entry before it expires
    set_at = time.monotonic()
    await store.set("short", b"v", ttl, "key:a", "m")
    await store.set("long", b"v", 60, "key:a", "m")
    fresh = await store.get("short")
    if time.monotonic() - set_at < ttl * 0.8:
        assert fresh == b"v"
    await asyncio.sleep(max(0.0, set_at + ttl + 0.3 - time.monotonic()))
    assert await store.get("short") is None
    assert await store.get("long") == b"v"
    assert await store.entries() == 1


async def test_invalidate_by_tenant_model_and_all(store: CacheStore) -> None:
    # Tenants and models with characters that are special in key names and glob patterns.
    for i, (tenant, model) in enumerate(
        [("key:a", "gpt-4o"), ("key:a", "m*[x]"), ("team:r&d", "gpt-4o"), ("key:b", "m*[x]")]
    ):
        await store.set(f"k{i}", b"v", 60, tenant, model)
    assert await store.invalidate(tenant="key:a", model="m*[x]") == 1
    assert await store.get("k1") is None and await store.get("k0") == b"v"
    assert await store.invalidate(model="gpt-4o") == 2
    assert await store.get("k3") == b"v"
    assert await store.invalidate(tenant="key:zzz") == 0
    assert await store.invalidate() == 1
    assert await store.entries() == 0


async def test_sqlite_entries_survive_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    a = SqliteCacheStore(path)
    await a.open()
    await a.set("k", b"kept", 60, "anon", "m")
    await a.aclose()
    b = SqliteCacheStore(path)
    await b.open()
    assert await b.get("k") == b"kept"
    await b.aclose()
