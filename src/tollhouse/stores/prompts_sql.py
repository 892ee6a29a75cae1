"""SQLite and PostgreSQL backends of ``PromptStore``: one JSON document per prompt, rewritten in a
transaction on each admin write (writes are rare), and a change counter the registry polls."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from tollhouse.stores.prompts import (
    LabelEvent,
    Prompt,
    PromptVersion,
    add_version,
    apply_label,
    keep_evaluation,
)
from tollhouse.stores.sql import SqliteDB, open_pg_pool

T = TypeVar("T")

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS prompts (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS prompts_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT OR IGNORE INTO prompts_version (id, version) VALUES (1, 0);
"""

_PG_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS prompts (id TEXT PRIMARY KEY, data TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS prompts_version "
    "(id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL)",
    "INSERT INTO prompts_version (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING",
)
_PG_LOCK = 0x70726F6D  # advisory lock id for creating the schema


def _dump(prompt: Prompt) -> str:
    return orjson.dumps(prompt.to_dict()).decode()


def _parse(data: str) -> Prompt:
    return Prompt.from_dict(orjson.loads(data))


class SqlitePromptStore:
    def __init__(self, path: str) -> None:
        self._db = SqliteDB(path)

    async def open(self) -> None:
        await self._db.open(_SQLITE_SCHEMA)

    async def token(self) -> str:
        def run(conn: sqlite3.Connection) -> str:
            return str(conn.execute("SELECT version FROM prompts_version WHERE id = 1").fetchone()[0])

        return await self._db.run(run)

    async def load(self) -> dict[str, Prompt]:
        def run(conn: sqlite3.Connection) -> dict[str, Prompt]:
            rows = conn.execute("SELECT data FROM prompts").fetchall()
            return {p.id: p for p in (_parse(r[0]) for r in rows)}

        return await self._db.run(run)

    async def _update(self, prompt_id: str, fn: Callable[[Prompt], T], create: bool = False) -> T:
        def run(conn: sqlite3.Connection) -> T:
            row = conn.execute("SELECT data FROM prompts WHERE id = ?", (prompt_id,)).fetchone()
            if row is None and not create:
                raise KeyError(f"unknown prompt {prompt_id!r}")
            prompt = Prompt(prompt_id) if row is None else _parse(row[0])
            out = fn(prompt)
            conn.execute(
                "INSERT INTO prompts (id, data) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                (prompt_id, _dump(prompt)),
            )
            conn.execute("UPDATE prompts_version SET version = version + 1 WHERE id = 1")
            return out

        return await self._db.transaction(run)

    async def push(self, version: PromptVersion) -> PromptVersion:
        return await self._update(version.prompt_id, lambda p: add_version(p, version), create=True)

    async def move_label(self, prompt_id: str, event: LabelEvent, expect: int | None = None) -> None:
        await self._update(prompt_id, lambda p: apply_label(p, event, expect))

    async def set_experiment(self, prompt_id: str, experiment: dict[str, Any] | None) -> None:
        def fn(prompt: Prompt) -> None:
            prompt.experiment = experiment

        await self._update(prompt_id, fn)

    async def add_evaluation(self, prompt_id: str, result: dict[str, Any]) -> None:
        await self._update(prompt_id, lambda p: keep_evaluation(p, result))

    async def aclose(self) -> None:
        await self._db.aclose()


class PostgresPromptStore:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._pool: Any = None

    async def open(self) -> None:
        self._pool = await open_pg_pool(self._dsn, _PG_SCHEMA, _PG_LOCK)

    async def token(self) -> str:
        return str(await self._pool.fetchval("SELECT version FROM prompts_version WHERE id = 1"))

    async def load(self) -> dict[str, Prompt]:
        rows = await self._pool.fetch("SELECT data FROM prompts")
        return {p.id: p for p in (_parse(r["data"]) for r in rows)}

    async def _update(self, prompt_id: str, fn: Callable[[Prompt], T], create: bool = False) -> T:
        async with self._pool.acquire() as conn, conn.transaction():
            # The counter row serialises writers (a new prompt has no row of its own to lock yet).
            await conn.execute("SELECT version FROM prompts_version WHERE id = 1 FOR UPDATE")
            data = await conn.fetchval("SELECT data FROM prompts WHERE id = $1", prompt_id)
            if data is None and not create:
                raise KeyError(f"unknown prompt {prompt_id!r}")
            prompt = Prompt(prompt_id) if data is None else _parse(data)
            out = fn(prompt)
            await conn.execute(
                "INSERT INTO prompts (id, data) VALUES ($1, $2) "
                "ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                prompt_id,
                _dump(prompt),
            )
            await conn.execute("UPDATE prompts_version SET version = version + 1 WHERE id = 1")
            return out

    async def push(self, version: PromptVersion) -> PromptVersion:
        return await self._update(version.prompt_id, lambda p: add_version(p, version), create=True)

    async def move_label(self, prompt_id: str, event: LabelEvent, expect: int | None = None) -> None:
        await self._update(prompt_id, lambda p: apply_label(p, event, expect))

    async def set_experiment(self, prompt_id: str, experiment: dict[str, Any] | None) -> None:
        def fn(prompt: Prompt) -> None:
            prompt.experiment = experiment

        await self._update(prompt_id, fn)

    async def add_evaluation(self, prompt_id: str, result: dict[str, Any]) -> None:
        await self._update(prompt_id, lambda p: keep_evaluation(p, result))

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
