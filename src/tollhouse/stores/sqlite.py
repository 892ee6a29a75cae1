"""SQLite backends (the embedded default): keys and the usage ledger, in WAL mode, off the event loop.

Several processes on one host may share the file: the key version lives in the database, so a revocation
made by the CLI or another worker reaches every cache at its next poll.
"""

from __future__ import annotations

import sqlite3
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
from tollhouse.stores.sql import SqliteDB

_KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, data TEXT NOT NULL, last_used_at REAL
);
CREATE TABLE IF NOT EXISTS api_keys_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT OR IGNORE INTO api_keys_version (id, version) VALUES (1, 0);
"""


class SqliteKeyStore:
    def __init__(self, path: str) -> None:
        self._db = SqliteDB(path, "key store (SQLite)")

    async def open(self) -> None:
        await self._db.open(_KEYS_SCHEMA)

    async def put(self, key: ApiKey) -> None:
        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO api_keys (id, hash, data) VALUES (?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, data = excluded.data",
                    (key.id, key.hash, key.to_json()),
                )
            except sqlite3.IntegrityError:
                raise ValueError("a key with this hash already exists") from None
            conn.execute("UPDATE api_keys_version SET version = version + 1 WHERE id = 1")

        await self._db.transaction(run)

    async def get(self, key_id: str) -> ApiKey | None:
        def run(conn: sqlite3.Connection) -> ApiKey | None:
            row = conn.execute("SELECT data, last_used_at FROM api_keys WHERE id = ?", (key_id,)).fetchone()
            return None if row is None else ApiKey.from_row(row)

        return await self._db.run(run)

    async def all(self) -> list[ApiKey]:
        def run(conn: sqlite3.Connection) -> list[ApiKey]:
            rows = conn.execute("SELECT data, last_used_at FROM api_keys").fetchall()
            return sorted((ApiKey.from_row(r) for r in rows), key=lambda k: (k.created_at, k.id))

        return await self._db.run(run)

    async def version(self) -> int:
        def run(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT version FROM api_keys_version WHERE id = 1").fetchone()[0])

        return await self._db.run(run)

    async def touch(self, last_used: dict[str, float]) -> None:
        rows = [(ts, key_id) for key_id, ts in last_used.items()]

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?", rows
            )

        await self._db.transaction(run)

    async def aclose(self) -> None:
        await self._db.aclose()


_SQLITE_TYPES = {
    "ts": "REAL NOT NULL",
    "cost_usd": "REAL",
    "latency_ms": "REAL",
    "ttft_ms": "REAL",
    "status": "INTEGER",
    "stream": "INTEGER",
    "cache_hit": "INTEGER",
    "prompt_tokens": "INTEGER",
    "completion_tokens": "INTEGER",
    "cached_tokens": "INTEGER",
    "saved_usd": "REAL",
    "retrieval_chunks": "INTEGER",
    "retrieval_tokens": "INTEGER",
    "retrieval_ms": "REAL",
}
_COLS = ", ".join(f'"{c}"' for c in LEDGER_COLUMNS)
_LEDGER_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ledger ("
    + ", ".join(
        f'"{c}" {"TEXT PRIMARY KEY" if c == "id" else _SQLITE_TYPES.get(c, "TEXT")}' for c in LEDGER_COLUMNS
    )
    + ");"
    """
CREATE INDEX IF NOT EXISTS ledger_ts ON ledger (ts);
CREATE INDEX IF NOT EXISTS ledger_key_ts ON ledger (key_id, ts);
"""
)
_GROUP_SQLITE = {
    "key_id": "key_id",
    "user": '"user"',
    "team": "team",
    "model": "model",
    "day": "strftime('%Y-%m-%d', ts, 'unixepoch')",
}


def _aggregate(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["cost_usd"] = float(out["cost_usd"])
    out["saved_usd"] = float(out["saved_usd"])
    return out


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Migrate a ledger created by an older version: add the columns it lacks (nullable)."""
    have = {r[1] for r in conn.execute("PRAGMA table_info(ledger)")}
    for c in LEDGER_COLUMNS:
        if c not in have:
            conn.execute(f'ALTER TABLE ledger ADD COLUMN "{c}" {_SQLITE_TYPES.get(c, "TEXT")}')


class SqliteLedgerStore:
    def __init__(self, path: str) -> None:
        self._db = SqliteDB(path, "usage ledger (SQLite)")

    async def open(self) -> None:
        await self._db.open(_LEDGER_SCHEMA)
        await self._db.run(_add_missing_columns)

    async def write(self, records: Sequence[LedgerRecord]) -> None:
        sql = f"INSERT OR IGNORE INTO ledger ({_COLS}) VALUES ({', '.join('?' * len(LEDGER_COLUMNS))})"
        rows = [ledger_row(r) for r in records]

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(sql, rows)

        await self._db.transaction(run)

    async def usage(self, group_by: str, since: float, until: float) -> list[dict[str, Any]]:
        sql = usage_select(_GROUP_SQLITE[group_by], "?", "?")

        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return [_aggregate(r) for r in conn.execute(sql, (since, until)).fetchall()]

        return await self._db.run(run)

    async def spent_usd(
        self, since: float, until: float, by: str | None = None, value: str | None = None
    ) -> float:
        sql = spent_select(by, "?", "?", "?")
        args = (since, until) if by is None else (since, until, value)

        def run(conn: sqlite3.Connection) -> float:
            return float(conn.execute(sql, args).fetchone()[0])

        return await self._db.run(run)

    async def count(self) -> int:
        def run(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0])

        return await self._db.run(run)

    async def purge(self, before: float) -> int:
        def run(conn: sqlite3.Connection) -> int:
            return int(conn.execute("DELETE FROM ledger WHERE ts < ?", (before,)).rowcount)

        return await self._db.transaction(run)

    async def aclose(self) -> None:
        await self._db.aclose()
