"""PostgreSQL backends (scale-out): keys and the usage ledger, shared by every gateway process.

The ledger is indexed for the report queries (time; key and time) and prunable by time with one indexed
``DELETE … WHERE ts < …``; writes are idempotent on the record id so a journal replay never doubles a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tollhouse.stores.base import (
    LEDGER_COLUMNS,
    ApiKey,
    LedgerRecord,
    ledger_row,
    spent_select,
    usage_select,
)
from tollhouse.stores.sql import PgPool

_KEYS_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, "
    "data TEXT NOT NULL, last_used_at DOUBLE PRECISION)",
    "CREATE SEQUENCE IF NOT EXISTS api_keys_version",
]


class PostgresKeyStore:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._pool = PgPool(dsn, _KEYS_SCHEMA, 7007002, "key store (PostgreSQL)")

    async def open(self) -> None:
        await self._pool.open()

    async def put(self, key: ApiKey) -> None:
        import asyncpg

        async with self._pool.acquire() as conn, conn.transaction():
            try:
                await conn.execute(
                    "INSERT INTO api_keys (id, hash, data) VALUES ($1, $2, $3) "
                    "ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, data = excluded.data",
                    key.id,
                    key.hash,
                    key.to_json(),
                )
            except asyncpg.UniqueViolationError:
                raise ValueError("a key with this hash already exists") from None
            await conn.execute("SELECT nextval('api_keys_version')")

    async def get(self, key_id: str) -> ApiKey | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT data, last_used_at FROM api_keys WHERE id = $1", key_id)
        return None if row is None else ApiKey.from_row(row)

    async def all(self) -> list[ApiKey]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT data, last_used_at FROM api_keys")
        return sorted((ApiKey.from_row(r) for r in rows), key=lambda k: (k.created_at, k.id))

    async def version(self) -> int:
        async with self._pool.acquire() as conn:
            # last_value of a never-used sequence is its start (1) with is_called false.
            row = await conn.fetchrow("SELECT last_value, is_called FROM api_keys_version")
        return int(row["last_value"]) if row["is_called"] else 0

    async def touch(self, last_used: dict[str, float]) -> None:
        async with self._pool.acquire() as conn:
            await conn.executemany(
                "UPDATE api_keys SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $1) WHERE id = $2",
                [(ts, key_id) for key_id, ts in last_used.items()],
            )

    async def aclose(self) -> None:
        await self._pool.aclose()


_PG_TYPES = {
    "ts": "DOUBLE PRECISION NOT NULL",
    "cost_usd": "DOUBLE PRECISION",
    "latency_ms": "DOUBLE PRECISION",
    "ttft_ms": "DOUBLE PRECISION",
    "status": "INTEGER",
    "stream": "BOOLEAN",
    "cache_hit": "BOOLEAN",
    "prompt_tokens": "INTEGER",
    "completion_tokens": "INTEGER",
    "cached_tokens": "INTEGER",
    "saved_usd": "DOUBLE PRECISION",
    "retrieval_chunks": "INTEGER",
    "retrieval_tokens": "INTEGER",
    "retrieval_ms": "DOUBLE PRECISION",
}
_COLS = ", ".join(f'"{c}"' for c in LEDGER_COLUMNS)
_LEDGER_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS ledger ("
    + ", ".join(
        f'"{c}" {"TEXT PRIMARY KEY" if c == "id" else _PG_TYPES.get(c, "TEXT")}' for c in LEDGER_COLUMNS
    )
    + ")",
    "CREATE INDEX IF NOT EXISTS ledger_ts ON ledger (ts)",
    "CREATE INDEX IF NOT EXISTS ledger_key_ts ON ledger (key_id, ts)",
    # Migrations of a ledger created by an older version (each a no-op when the column exists).
    *(
        f'ALTER TABLE ledger ADD COLUMN IF NOT EXISTS "{c}" {_PG_TYPES.get(c, "TEXT")}'
        for c in (
            "cache_status",
            "saved_usd",
            "ingress",
            "retrieval_chunks",
            "retrieval_tokens",
            "retrieval_ms",
        )
    ),
]
_GROUP_PG = {
    "key_id": "key_id",
    "user": '"user"',
    "team": "team",
    "model": "model",
    "day": "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}


class PostgresLedgerStore:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._pool = PgPool(dsn, _LEDGER_SCHEMA, 7007003, "usage ledger (PostgreSQL)")

    async def open(self) -> None:
        await self._pool.open()

    async def write(self, records: Sequence[LedgerRecord]) -> None:
        marks = ", ".join(f"${i + 1}" for i in range(len(LEDGER_COLUMNS)))
        sql = f"INSERT INTO ledger ({_COLS}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING"
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(sql, [ledger_row(r) for r in records])

    async def usage(self, group_by: str, since: float, until: float) -> list[dict[str, Any]]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(usage_select(_GROUP_PG[group_by], "$1", "$2"), since, until)
        return [
            {**dict(r), "cost_usd": float(r["cost_usd"]), "saved_usd": float(r["saved_usd"])} for r in rows
        ]

    async def spent_usd(
        self, since: float, until: float, by: str | None = None, value: str | None = None
    ) -> float:
        args = (since, until) if by is None else (since, until, value)
        async with self._pool.acquire() as conn:
            return float(await conn.fetchval(spent_select(by, "$1", "$2", "$3"), *args))

    async def count(self) -> int:
        async with self._pool.acquire() as conn:
            return int(await conn.fetchval("SELECT COUNT(*) FROM ledger"))

    async def purge(self, before: float) -> int:
        async with self._pool.acquire() as conn:
            status = await conn.execute("DELETE FROM ledger WHERE ts < $1", before)
        return int(status.split()[-1])

    async def aclose(self) -> None:
        await self._pool.aclose()
