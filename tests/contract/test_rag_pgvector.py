"""The PostgreSQL retrieval store's two dense-search paths: pgvector where the server has it (pgserver's
PostgreSQL 16), the numpy fallback where it has not (the machine's PostgreSQL), and moving between them on
the same tables. The common behaviour is in ``test_rag_store.py``, run on both."""

from __future__ import annotations

import time

import asyncpg
import numpy as np
import pytest

from tollhouse.config.base import ConfigError
from tollhouse.stores import rag_pgvector as pgv
from tollhouse.stores.rag_base import ChunkIn, Collection, DocumentIn
from tollhouse.stores.rag_postgres import PgRagStore

DIM = 8


def vecs(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def one(doc_id: str, v: np.ndarray, **meta: object) -> DocumentIn:
    return DocumentIn(doc_id, doc_id, dict(meta), [ChunkIn(0, 0, 5, f"text {doc_id}", 2)], v.reshape(1, -1))


async def filled(dsn: str, mode: pgv.Mode, n: int = 50) -> PgRagStore:
    s = PgRagStore(dsn, "ragv", vectors=mode)
    await s.open()
    await s.create_collection(Collection("t1", "c", "m", DIM, time.time()))
    for i, v in enumerate(vecs(n)):
        await s.put_document("t1", "c", one(f"d{i:03}", v, kind="x" if i % 10 == 0 else "y"))
    return s


async def ids_of(s: PgRagStore, hits: list[tuple[int, float]]) -> list[str]:
    return [c.document_id for c in await s.chunks("t1", "c", [i for i, _ in hits])]


async def test_auto_falls_back_where_the_server_has_no_pgvector(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        available = bool(await conn.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"))
    finally:
        await conn.close()
    s = await filled(pg_dsn, "auto", 5)
    try:
        assert s.pgvector is available
        hits = await s.vector_search("t1", "c", vecs(5)[3], 1, None)
        assert await ids_of(s, hits) == ["d003"]
    finally:
        await s.aclose()
    if available:
        pytest.skip("this PostgreSQL has pgvector: no server without it to fail on")
    forced = PgRagStore(pg_dsn, "ragv", vectors="pgvector")
    with pytest.raises(ConfigError, match="no pgvector extension"):
        await forced.open()
    await forced.aclose()


async def test_pgvector_searches_the_collections_hnsw_index(pgvector_dsn: str) -> None:
    s = await filled(pgvector_dsn, "auto")
    try:
        assert s.pgvector and s.emb
        conn = await asyncpg.connect(pgvector_dsn)
        try:
            cid = await conn.fetchval("SELECT cid FROM ragv_collections WHERE name = 'c'")
            q = pgv.as_param(vecs(50)[7])
            # 50 rows are cheaper to sort: the question is whether the query can walk the index at all
            await conn.execute("SET enable_sort = off")
            plan = "\n".join(
                r[0] for r in await conn.fetch("EXPLAIN " + pgv.knn_sql("ragv", cid, DIM, ""), q, 5)
            )
            assert f"ragv_hnsw_{cid}" in plan  # the graph, not a scan of the table
            where, args = "AND d.meta @> $3::jsonb", ['{"kind": "x"}']
            plan = "\n".join(
                r[0]
                for r in await conn.fetch(
                    "EXPLAIN " + pgv.knn_sql("ragv", cid, DIM, " " + where), q, 5, *args
                )
            )
            assert "hnsw" not in plan  # a filter: exact over the matching rows
        finally:
            await conn.close()
        hits = await s.vector_search("t1", "c", vecs(50)[7], 3, None)
        assert (await ids_of(s, hits))[0] == "d007" and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    finally:
        await s.aclose()


async def test_a_selective_filter_still_returns_k(pgvector_dsn: str) -> None:
    s = await filled(pgvector_dsn, "pgvector", 200)
    try:
        far = -vecs(200)[0]
        # 20 of 200 documents match: a graph walk filtered afterwards (64 candidates) would find about 6
        hits = await s.vector_search("t1", "c", far, 20, {"kind": "x"})
        got = await ids_of(s, hits)
        assert sorted(got) == [f"d{i:03}" for i in range(0, 200, 10)]
        scores = [sc for _, sc in hits]
        assert scores == sorted(scores, reverse=True)
        assert await s.vector_search("t2", "c", far, 5, None) == []  # another tenant: nothing
    finally:
        await s.aclose()


async def test_a_table_moves_between_fallback_and_pgvector(pgvector_dsn: str) -> None:
    s = await filled(pgvector_dsn, "fallback", 30)  # written without the extension's column
    q = vecs(30)[11]
    try:
        assert not s.pgvector and not s.emb
        before = await ids_of(s, await s.vector_search("t1", "c", q, 5, None))
    finally:
        await s.aclose()
    s = PgRagStore(pgvector_dsn, "ragv")  # auto: the column is added and filled, the index built
    await s.open()
    try:
        assert s.pgvector
        assert await ids_of(s, await s.vector_search("t1", "c", q, 5, None)) == before
    finally:
        await s.aclose()
    s = PgRagStore(pgvector_dsn, "ragv", vectors="fallback")  # the table has the column: writes fill it
    await s.open()
    try:
        assert s.emb and not s.pgvector
        await s.put_document("t1", "c", one("late", vecs(1, seed=9)[0]))
    finally:
        await s.aclose()
    s = PgRagStore(pgvector_dsn, "ragv")
    await s.open()
    try:
        hits = await s.vector_search("t1", "c", vecs(1, seed=9)[0], 1, None)
        assert await ids_of(s, hits) == ["late"] and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    finally:
        await s.aclose()


async def test_wide_vectors_are_searched_without_an_index(pgvector_dsn: str) -> None:
    s = PgRagStore(pgvector_dsn, "ragv")
    await s.open()
    try:
        wide = pgv.MAX_INDEXED_DIM + 48
        await s.create_collection(Collection("t1", "c", "m", wide, time.time()))
        v = np.zeros((2, wide), dtype=np.float32)
        v[0, 0] = v[1, 1] = 1.0
        await s.put_document("t1", "c", one("a", v[0]))
        await s.put_document("t1", "c", one("b", v[1]))
        assert await ids_of(s, await s.vector_search("t1", "c", v[1], 2, None)) == ["b", "a"]
    finally:
        await s.aclose()
