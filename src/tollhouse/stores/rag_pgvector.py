"""Dense search by pgvector, for the PostgreSQL retrieval store when the server has the extension (ADR 0026).

Each chunk row keeps its float32 ``bytea`` (the copy/export format and the fallback's input) and, when the
table has it, an ``emb vector`` column. Collections differ in dimension, so one column cannot be
``vector(d)`` for all: every collection gets its own partial HNSW index over ``emb::vector(d)`` with cosine
ops, ``WHERE cid = <its id>``, and searches order by that same expression — so a search touches only its
collection's graph (tenant and collection are in the index predicate and in the query). Metadata filters are
applied in the query by an exact scan of the collection's matching rows: HNSW in pgvector 0.6 filters after
the graph walk and would return fewer than ``k``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from tollhouse.config.base import ConfigError
from tollhouse.stores.rag_base import F32

Mode = Literal["auto", "pgvector", "fallback"]
MAX_INDEXED_DIM = 2000  # pgvector's HNSW limit for `vector`; wider collections are searched exactly
BACKFILL_BATCH = 2000


async def detect(conn: Any, mode: Mode) -> bool:
    """Whether the server has pgvector for this database: ``CREATE EXTENSION IF NOT EXISTS vector`` when
    the role may, else whether it is already installed. ``mode: pgvector`` without it is a ``ConfigError``;
    ``fallback`` never looks."""
    if mode == "fallback":
        return False
    if await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'vector'"):
        return True
    reason = "not installed on the server"
    if await conn.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"):
        try:
            async with conn.transaction():
                await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except Exception as exc:  # not permitted (or created meanwhile by another replica: look again)
            reason = str(exc)
        else:
            return True
        if await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'vector'"):
            return True
    if mode == "pgvector":
        raise ConfigError(
            f"rag.postgres_vectors is pgvector but the server has no pgvector extension ({reason}); "
            "install it (or have an administrator run CREATE EXTENSION vector), or use auto / fallback"
        )
    return False


async def has_column(conn: Any, table: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'emb'"
            " AND NOT attisdropped",
            table,
        )
    )


def index_sql(p: str, cid: int, dim: int) -> str | None:
    if dim > MAX_INDEXED_DIM:
        return None
    return (
        f"CREATE INDEX IF NOT EXISTS {p}_hnsw_{cid} ON {p}_chunks"
        f" USING hnsw ((emb::vector({dim})) vector_cosine_ops) WHERE cid = {cid}"
    )


def drop_index_sql(p: str, cid: int) -> str:
    return f"DROP INDEX IF EXISTS {p}_hnsw_{cid}"


async def prepare(conn: Any, p: str) -> None:
    """Give the chunk table its ``emb`` column, fill it for rows written before it existed, and make sure
    every collection has its index (the caller holds the schema's advisory lock)."""
    await conn.execute(f"ALTER TABLE {p}_chunks ADD COLUMN IF NOT EXISTS emb vector")
    while True:
        rows = await conn.fetch(
            f"SELECT k.id, k.vec, c.dim FROM {p}_chunks k JOIN {p}_collections c ON c.cid = k.cid"
            f" WHERE k.emb IS NULL LIMIT {BACKFILL_BATCH}"
        )
        if not rows:
            break
        await conn.executemany(
            f"UPDATE {p}_chunks SET emb = $1::real[]::vector WHERE id = $2",
            [(np.frombuffer(bytes(r["vec"]), dtype="<f4").tolist(), r["id"]) for r in rows],
        )
    for r in await conn.fetch(f"SELECT cid, dim FROM {p}_collections"):
        sql = index_sql(p, r["cid"], r["dim"])
        if sql is not None:
            await conn.execute(sql)


def as_param(v: F32) -> list[float]:
    return np.asarray(v, dtype=np.float32).tolist()  # type: ignore[no-any-return]


def knn_sql(p: str, cid: int, dim: int, where: str) -> str:
    """The nearest chunks of collection ``cid``: ``$1`` the query vector, ``$2`` the limit; ``where`` the
    metadata filter over ``d.meta`` (its parameters from ``$3``). Without a filter the collection's HNSW index
    answers (ORDER BY the indexed expression, ``cid`` a literal so the partial index applies to every plan);
    with one, an exact scan of the matching rows ("+ 0" keeps the planner off the post-filtering index)."""
    dist = f"k.emb::vector({dim}) <=> $1::real[]::vector({dim})"
    if not where:
        return (
            f"SELECT k.id, 1 - ({dist}) AS s FROM {p}_chunks k WHERE k.cid = {cid} ORDER BY {dist} LIMIT $2"
        )
    return (
        f"SELECT k.id, 1 - ({dist}) AS s FROM {p}_chunks k"
        f" JOIN {p}_documents d ON d.cid = k.cid AND d.doc_id = k.doc_id"
        f" WHERE k.cid = {cid}{where} ORDER BY ({dist}) + 0, k.id LIMIT $2"
    )


async def search(
    conn: Any, p: str, cid: int, dim: int, vector: F32, k: int, where: str, args: list[Any]
) -> list[tuple[int, float]]:
    """(chunk id, cosine similarity) best first."""
    sql = knn_sql(p, cid, dim, where)
    if where:
        rows = await conn.fetch(sql, as_param(vector), k, *args)
    else:  # the graph walk keeps ef_search candidates: at least k
        async with conn.transaction():
            await conn.execute(f"SET LOCAL hnsw.ef_search = {min(1000, max(64, 2 * k))}")
            rows = await conn.fetch(sql, as_param(vector), k)
    return [(int(r[0]), float(r[1])) for r in rows]
