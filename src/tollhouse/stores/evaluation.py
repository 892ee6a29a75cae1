"""Evaluation records and feedback: the ``EvalStore`` Protocol and its SQLite and PostgreSQL backends.

Writes come in batches from ``telemetry.evaluation.EvalLogger``'s background task, never from a request.
SQLite runs in a worker thread (stdlib ``sqlite3``, WAL); PostgreSQL uses an ``asyncpg`` pool. Timestamps
are epoch seconds. A request id may repeat (callers choose ``X-Request-ID``), so it is indexed, not unique.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from typing import Any, Protocol

from tollhouse.stores.sql import PgPool, SqliteDB


@dataclass(slots=True)
class EvalRecord:
    request_id: str
    ts: float
    endpoint: str
    ingress: str
    model: str | None
    deployment: str | None
    model_served: str | None
    key_id: str | None
    team: str | None
    status: int
    error_type: str | None
    stream: bool
    latency_ms: float
    ttft_ms: float | None
    upstream_ms: float
    overhead_ms: float
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float
    finish_reason: str | None
    cache_status: str | None
    guardrails: list[tuple[str, str]] | None
    prompt_template: str | None
    prompt_version: str | None
    trace_id: str | None


@dataclass(slots=True)
class Feedback:
    request_id: str
    score: float
    comment: str | None
    key_id: str | None
    ts: float


COLUMNS = tuple(f.name for f in fields(EvalRecord))
_FEEDBACK_COLUMNS = ("request_id", "score", "comment", "key_id", "ts")


class EvalStore(Protocol):
    async def open(self) -> None:
        """Connect and create the tables if needed. Raises when the store cannot be reached."""
        ...

    async def write(self, records: Sequence[EvalRecord], feedback: Sequence[Feedback]) -> None:
        """Append one batch (one transaction)."""
        ...

    async def purge(self, before: float) -> int:
        """Delete records and feedback older than ``before`` (epoch seconds); returns rows removed."""
        ...

    async def get(self, request_id: str) -> dict[str, Any] | None:
        """The latest record of a request joined with its feedback (``feedback``: list, oldest first)."""
        ...

    async def aclose(self) -> None: ...


def _row(r: EvalRecord) -> tuple[Any, ...]:
    values = list(astuple(r))
    i = COLUMNS.index("guardrails")
    values[i] = None if r.guardrails is None else json.dumps(r.guardrails)
    return tuple(values)


def _record_dict(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out.pop("id", None)
    out["stream"] = bool(out["stream"])
    if out.get("guardrails"):
        out["guardrails"] = [tuple(x) for x in json.loads(out["guardrails"])]
    return out


_SQLITE_REAL = frozenset({"ts", "latency_ms", "ttft_ms", "upstream_ms", "overhead_ms", "cost_usd"})
_SQLITE_INT = frozenset({"status", "stream", "prompt_tokens", "completion_tokens"})


def _sqlite_type(column: str) -> str:
    return "REAL" if column in _SQLITE_REAL else "INTEGER" if column in _SQLITE_INT else "TEXT"


_SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS eval_records (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    + ", ".join(f"{c} {_sqlite_type(c)}" for c in COLUMNS)
    + ");"
    """
CREATE INDEX IF NOT EXISTS eval_records_request_id ON eval_records (request_id);
CREATE INDEX IF NOT EXISTS eval_records_ts ON eval_records (ts);
CREATE TABLE IF NOT EXISTS eval_feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL, score REAL NOT NULL, comment TEXT, key_id TEXT, ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS eval_feedback_request_id ON eval_feedback (request_id);
CREATE INDEX IF NOT EXISTS eval_feedback_ts ON eval_feedback (ts);
"""
)


class SqliteEvalStore:
    """One connection used from worker threads, one operation at a time (``stores.sql.SqliteDB``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db = SqliteDB(path, "evaluation store (SQLite)")

    async def open(self) -> None:
        await self._db.open(_SQLITE_SCHEMA)

    async def write(self, records: Sequence[EvalRecord], feedback: Sequence[Feedback]) -> None:
        rec_sql = f"INSERT INTO eval_records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        fb_sql = f"INSERT INTO eval_feedback ({', '.join(_FEEDBACK_COLUMNS)}) VALUES (?, ?, ?, ?, ?)"
        rec_rows = [_row(r) for r in records]
        fb_rows = [(f.request_id, f.score, f.comment, f.key_id, f.ts) for f in feedback]

        def run(conn: sqlite3.Connection) -> None:
            if rec_rows:
                conn.executemany(rec_sql, rec_rows)
            if fb_rows:
                conn.executemany(fb_sql, fb_rows)

        await self._db.transaction(run)

    async def purge(self, before: float) -> int:
        def run(conn: sqlite3.Connection) -> int:
            a = conn.execute("DELETE FROM eval_records WHERE ts < ?", (before,)).rowcount
            b = conn.execute("DELETE FROM eval_feedback WHERE ts < ?", (before,)).rowcount
            return int(a + b)

        return await self._db.transaction(run)

    async def get(self, request_id: str) -> dict[str, Any] | None:
        def run(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute(
                "SELECT * FROM eval_records WHERE request_id = ? ORDER BY ts DESC, id DESC LIMIT 1",
                (request_id,),
            ).fetchone()
            if row is None:
                return None
            fb = conn.execute(
                "SELECT score, comment, key_id, ts FROM eval_feedback WHERE request_id = ? ORDER BY id",
                (request_id,),
            ).fetchall()
            return {**_record_dict(dict(row)), "feedback": [dict(f) for f in fb]}

        return await self._db.run(run)

    async def aclose(self) -> None:
        await self._db.aclose()


_PG_TYPES = {
    "ts": "DOUBLE PRECISION",
    "latency_ms": "DOUBLE PRECISION",
    "ttft_ms": "DOUBLE PRECISION",
    "upstream_ms": "DOUBLE PRECISION",
    "overhead_ms": "DOUBLE PRECISION",
    "cost_usd": "DOUBLE PRECISION",
    "status": "INTEGER",
    "stream": "BOOLEAN",
    "prompt_tokens": "INTEGER",
    "completion_tokens": "INTEGER",
}
_PG_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS eval_records (id BIGSERIAL PRIMARY KEY, "
    + ", ".join(f"{c} {_PG_TYPES.get(c, 'TEXT')}" for c in COLUMNS)
    + ")",
    "CREATE INDEX IF NOT EXISTS eval_records_request_id ON eval_records (request_id)",
    "CREATE INDEX IF NOT EXISTS eval_records_ts ON eval_records (ts)",
    "CREATE TABLE IF NOT EXISTS eval_feedback (id BIGSERIAL PRIMARY KEY, request_id TEXT NOT NULL, "
    "score DOUBLE PRECISION NOT NULL, comment TEXT, key_id TEXT, ts DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS eval_feedback_request_id ON eval_feedback (request_id)",
    "CREATE INDEX IF NOT EXISTS eval_feedback_ts ON eval_feedback (ts)",
]


class PostgresEvalStore:
    """An asyncpg pool of two connections: writes are batched, so one is plenty."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._pool = PgPool(dsn, _PG_SCHEMA, 7007001, "evaluation store (PostgreSQL)")

    async def open(self) -> None:
        await self._pool.open()

    async def write(self, records: Sequence[EvalRecord], feedback: Sequence[Feedback]) -> None:
        cols = ", ".join(COLUMNS)
        marks = ", ".join(f"${i + 1}" for i in range(len(COLUMNS)))
        async with self._pool.acquire() as conn, conn.transaction():
            if records:
                await conn.executemany(
                    f"INSERT INTO eval_records ({cols}) VALUES ({marks})", [_row(r) for r in records]
                )
            if feedback:
                await conn.executemany(
                    f"INSERT INTO eval_feedback ({', '.join(_FEEDBACK_COLUMNS)}) VALUES ($1, $2, $3, $4, $5)",
                    [(f.request_id, f.score, f.comment, f.key_id, f.ts) for f in feedback],
                )

    async def purge(self, before: float) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            a = await conn.execute("DELETE FROM eval_records WHERE ts < $1", before)
            b = await conn.execute("DELETE FROM eval_feedback WHERE ts < $1", before)
        return int(a.split()[-1]) + int(b.split()[-1])

    async def get(self, request_id: str) -> dict[str, Any] | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM eval_records WHERE request_id = $1 ORDER BY ts DESC, id DESC LIMIT 1",
                request_id,
            )
            if row is None:
                return None
            fb = await conn.fetch(
                "SELECT score, comment, key_id, ts FROM eval_feedback WHERE request_id = $1 ORDER BY id",
                request_id,
            )
        return {**_record_dict(dict(row)), "feedback": [dict(f) for f in fb]}

    async def aclose(self) -> None:
        await self._pool.aclose()
