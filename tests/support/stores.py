"""Real Redis and PostgreSQL for contract and integration tests: a fresh schema / key prefix per test."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

PG_DSN = os.environ.get("TOLLHOUSE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TOLLHOUSE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def require_pg() -> None:
    if not _up(5432):
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")


def require_redis() -> None:
    if not _up(6379):
        pytest.skip("Redis is not running on 127.0.0.1:6379")


def _pg(sql: str) -> None:
    """Run one statement from a thread of its own (callers may be inside a running event loop)."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@contextmanager
def pg_schema() -> Iterator[str]:
    """A DSN whose search_path is a schema of its own, dropped afterwards."""
    require_pg()
    schema = f"th_test_{uuid.uuid4().hex[:12]}"
    _pg(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_DSN}?search_path={schema}"
    finally:
        _pg(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    with pg_schema() as dsn:
        yield dsn


@pytest.fixture
def redis_prefix() -> str:
    require_redis()
    return f"th-test-{uuid.uuid4().hex[:12]}:"
