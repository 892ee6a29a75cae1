"""``KeyStore`` contract, over every backend (memory, SQLite, real PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tollhouse.stores.base import ApiKey, KeyStore
from tollhouse.stores.memory import MemoryKeyStore
from tollhouse.stores.postgres import PostgresKeyStore
from tollhouse.stores.sqlite import SqliteKeyStore


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyStore]:
    s: KeyStore
    if request.param == "memory":
        s = MemoryKeyStore()
    elif request.param == "sqlite":
        s = SqliteKeyStore(str(tmp_path / "keys.db"))
    else:
        s = PostgresKeyStore(request.getfixturevalue("pg_dsn"))
    await s.open()
    yield s
    await s.aclose()


def _key(i: int, **kw: object) -> ApiKey:
    return ApiKey(id=f"key_{i}", hash=f"h{i}", prefix=f"th-{i}", name=f"k{i}", created_at=1000.0 + i, **kw)  # type: ignore[arg-type]


async def test_put_get_all_and_version(store: KeyStore) -> None:
    v0 = await store.version()
    assert await store.all() == []
    k = _key(1, user="u", team="t", models=["a"], rpm=5, tpm=100, model_limits={"a": {"rpm": 1, "tpm": None}})
    await store.put(k)
    v1 = await store.version()
    assert v1 != v0
    assert await store.get("key_1") == k
    assert await store.get("nope") is None
    await store.put(_key(2))
    assert [x.id for x in await store.all()] == ["key_1", "key_2"]
    k.revoked_at = time.time()
    await store.put(k)
    assert (await store.get("key_1")).revoked_at == k.revoked_at  # type: ignore[union-attr]
    assert len({v0, v1, await store.version()}) == 3


async def test_hash_is_unique(store: KeyStore) -> None:
    await store.put(_key(1))
    dup = _key(2)
    dup.hash = "h1"
    with pytest.raises(ValueError, match="hash"):
        await store.put(dup)


async def test_touch_records_last_use_without_moving_the_version(store: KeyStore) -> None:
    await store.put(_key(1))
    v = await store.version()
    await store.touch({"key_1": 1234.5, "missing": 1.0})
    assert (await store.get("key_1")).last_used_at == 1234.5  # type: ignore[union-attr]
    await store.touch({"key_1": 10.0})  # never moves backwards
    assert (await store.get("key_1")).last_used_at == 1234.5  # type: ignore[union-attr]
    assert await store.version() == v
