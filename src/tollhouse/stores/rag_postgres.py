"""The retrieval store on PostgreSQL (shared by every replica): collections, documents and chunks in
tables named ``<prefix>_…``; full-text search by PostgreSQL's ``tsvector`` (English configuration,
``ts_rank_cd``). Dense search: by pgvector in SQL where the server has it (``rag_pgvector.py``, ADR 0026),
else — the fallback, which works on any server (Debian's ships no pgvector) — on float32 ``bytea`` vectors
searched in numpy in the gateway (``rag_dense.py``), loaded once per collection version (ADR 0020).
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import orjson

from tollhouse.errors import Conflict
from tollhouse.stores import rag_pgvector as pgv
from tollhouse.stores.rag_base import F32, ChunkOut, Collection, DocumentIn, DocumentInfo, Filters
from tollhouse.stores.rag_dense import DenseCache, DenseIndex, from_blobs, to_blob
from tollhouse.stores.rag_rows import chunk_out, exported
from tollhouse.stores.sql import PgPool

WORD = re.compile(r"[^\W_]+", re.UNICODE)  # to_tsquery operands: no punctuation, no "_"


def _schema(p: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS {p}_collections (
            cid BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, name TEXT NOT NULL, model TEXT NOT NULL,
            dim INTEGER NOT NULL, created DOUBLE PRECISION NOT NULL, description TEXT NOT NULL DEFAULT '',
            version BIGINT NOT NULL DEFAULT 0, UNIQUE (tenant, name))""",
        f"""CREATE TABLE IF NOT EXISTS {p}_documents (
            cid BIGINT NOT NULL REFERENCES {p}_collections (cid) ON DELETE CASCADE, doc_id TEXT NOT NULL,
            sha256 TEXT NOT NULL, meta JSONB NOT NULL, title TEXT, chunks INTEGER NOT NULL,
            created DOUBLE PRECISION NOT NULL, PRIMARY KEY (cid, doc_id))""",
        f"""CREATE TABLE IF NOT EXISTS {p}_chunks (
            id BIGSERIAL PRIMARY KEY, cid BIGINT NOT NULL, doc_id TEXT NOT NULL, idx INTEGER NOT NULL,
            start INTEGER NOT NULL, stop INTEGER NOT NULL, tokens INTEGER NOT NULL, heading TEXT,
            body TEXT NOT NULL, vec BYTEA NOT NULL,
            tsv TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', body)) STORED,
            FOREIGN KEY (cid, doc_id) REFERENCES {p}_documents (cid, doc_id) ON DELETE CASCADE)""",
        f"CREATE INDEX IF NOT EXISTS {p}_chunks_tsv ON {p}_chunks USING GIN (tsv)",
        f"CREATE INDEX IF NOT EXISTS {p}_chunks_doc ON {p}_chunks (cid, doc_id)",
    ]


class PgRagStore:
    def __init__(
        self, dsn: str, prefix: str = "rag", exact_limit: int = 20_000, vectors: pgv.Mode = "auto"
    ) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", prefix):
            raise ValueError(f"bad table prefix {prefix!r}")
        self.p = prefix
        self.pool = PgPool(
            dsn,
            _schema(prefix),
            zlib.crc32(f"rag:{prefix}".encode()),
            "retrieval store (PostgreSQL)",
            max_size=4,
        )
        self.dense = DenseCache(exact_limit)
        self.mode = vectors
        self.pgvector = False  # dense search by pgvector (else in numpy)
        self.emb = False  # the chunk table has the `emb vector` column: every write fills it
        self._prepared = False

    async def open(self) -> None:
        async with self._acquire():
            pass

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[Any]:
        """A connection; the first one (at start, or the first use after a start without the server)
        detects pgvector and prepares the tables for it."""
        async with self.pool.acquire() as conn:
            if not self._prepared:
                await self._prepare(conn)
            yield conn

    async def _prepare(self, conn: Any) -> None:
        found = await pgv.detect(conn, self.mode)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", zlib.crc32(f"rag:{self.p}".encode()))
            if found:
                await pgv.prepare(conn, self.p)
            self.emb = await pgv.has_column(conn, f"{self.p}_chunks")
        self.pgvector = found and self.emb
        self._prepared = True

    async def aclose(self) -> None:
        await self.pool.aclose()

    async def _cid(self, conn: Any, tenant: str, name: str) -> int | None:
        v = await conn.fetchval(
            f"SELECT cid FROM {self.p}_collections WHERE tenant = $1 AND name = $2", tenant, name
        )
        return None if v is None else int(v)

    # ---- collections -----------------------------------------------------------------------------------

    async def create_collection(self, c: Collection) -> Collection:
        async with self._acquire() as conn:
            row = await conn.fetchrow(
                f"INSERT INTO {self.p}_collections (tenant, name, model, dim, created, description)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, name) DO NOTHING RETURNING cid",
                c.tenant,
                c.name,
                c.embedding_model,
                c.dim,
                c.created,
                c.description,
            )
            if row is not None and self.emb and (sql := pgv.index_sql(self.p, row["cid"], c.dim)):
                await conn.execute(sql)
        if row is None:
            raise Conflict(f"Collection '{c.name}' exists already.", param="name")
        return c

    def _select(self) -> str:
        p = self.p
        return (
            f"SELECT c.*, (SELECT count(*) FROM {p}_documents d WHERE d.cid = c.cid) AS docs,"
            f" (SELECT count(*) FROM {p}_chunks k WHERE k.cid = c.cid) AS nchunks FROM {p}_collections c"
        )

    @staticmethod
    def _row(r: Any) -> Collection:
        return Collection(
            r["tenant"],
            r["name"],
            r["model"],
            r["dim"],
            r["created"],
            r["docs"],
            r["nchunks"],
            r["description"],
        )

    async def get_collection(self, tenant: str, name: str) -> Collection | None:
        async with self._acquire() as conn:
            r = await conn.fetchrow(self._select() + " WHERE tenant = $1 AND name = $2", tenant, name)
        return None if r is None else self._row(r)

    async def list_collections(self, tenant: str) -> list[Collection]:
        async with self._acquire() as conn:
            rows = await conn.fetch(self._select() + " WHERE tenant = $1 ORDER BY name", tenant)
        return [self._row(r) for r in rows]

    async def delete_collection(self, tenant: str, name: str) -> bool:
        async with self._acquire() as conn, conn.transaction():
            cid = await self._cid(conn, tenant, name)
            if cid is None:
                return False
            await conn.execute(f"DELETE FROM {self.p}_chunks WHERE cid = $1", cid)
            await conn.execute(f"DELETE FROM {self.p}_collections WHERE cid = $1", cid)  # documents cascade
            if self.emb:
                await conn.execute(pgv.drop_index_sql(self.p, cid))
        self.dense.drop(tenant, name)
        return True

    async def chunk_texts(self, tenant: str, name: str) -> list[tuple[int, str]]:
        async with self._acquire() as conn:
            cid = await self._cid(conn, tenant, name)
            rows = await conn.fetch(f"SELECT id, body FROM {self.p}_chunks WHERE cid = $1 ORDER BY id", cid)
        return [(int(r[0]), str(r[1])) for r in rows]

    async def set_embedding_model(self, tenant: str, name: str, model: str, dim: int, vectors: F32) -> None:
        async with self._acquire() as conn, conn.transaction():
            cid = await self._cid(conn, tenant, name)
            if cid is None:
                raise RuntimeError(f"collection {name} vanished")
            ids = [
                r[0]
                for r in await conn.fetch(
                    f"SELECT id FROM {self.p}_chunks WHERE cid = $1 ORDER BY id FOR UPDATE", cid
                )
            ]
            if len(ids) != len(vectors):
                raise RuntimeError("the collection changed while it was re-embedded; try again")
            if self.emb:  # the index casts to the old dimension: rebuilt after the update
                await conn.execute(pgv.drop_index_sql(self.p, cid))
                await conn.executemany(
                    f"UPDATE {self.p}_chunks SET vec = $1, emb = $2::real[]::vector WHERE id = $3",
                    [(to_blob(v), pgv.as_param(v), i) for i, v in zip(ids, vectors, strict=True)],
                )
            else:
                await conn.executemany(
                    f"UPDATE {self.p}_chunks SET vec = $1 WHERE id = $2",
                    [(to_blob(v), i) for i, v in zip(ids, vectors, strict=True)],
                )
            await conn.execute(
                f"UPDATE {self.p}_collections SET model = $1, dim = $2, version = version + 1 WHERE cid = $3",
                model,
                dim,
                cid,
            )
            if self.emb and (sql := pgv.index_sql(self.p, cid, dim)):
                await conn.execute(sql)

    # ---- documents -------------------------------------------------------------------------------------

    @staticmethod
    def _info(r: Any) -> DocumentInfo:
        return DocumentInfo(
            r["doc_id"], r["sha256"], orjson.loads(r["meta"]), r["chunks"], r["created"], r["title"]
        )

    async def document(self, tenant: str, name: str, doc_id: str) -> DocumentInfo | None:
        async with self._acquire() as conn:
            r = await conn.fetchrow(
                f"SELECT d.* FROM {self.p}_documents d JOIN {self.p}_collections c ON c.cid = d.cid"
                " WHERE c.tenant = $1 AND c.name = $2 AND d.doc_id = $3",
                tenant,
                name,
                doc_id,
            )
        return None if r is None else self._info(r)

    async def list_documents(
        self, tenant: str, name: str, limit: int, after: str | None
    ) -> list[DocumentInfo]:
        async with self._acquire() as conn:
            rows = await conn.fetch(
                f"SELECT d.* FROM {self.p}_documents d JOIN {self.p}_collections c ON c.cid = d.cid"
                " WHERE c.tenant = $1 AND c.name = $2 AND d.doc_id > $3 ORDER BY d.doc_id LIMIT $4",
                tenant,
                name,
                after or "",
                limit,
            )
        return [self._info(r) for r in rows]

    async def put_document(self, tenant: str, name: str, doc: DocumentIn) -> bool:
        meta = orjson.dumps(doc.metadata, option=orjson.OPT_SORT_KEYS).decode()
        p = self.p
        async with self._acquire() as conn, conn.transaction():
            cid = await self._cid(conn, tenant, name)
            if cid is None:
                raise RuntimeError(f"collection {name} vanished")
            old = await conn.fetchrow(
                f"SELECT sha256, meta, title FROM {p}_documents WHERE cid = $1 AND doc_id = $2 FOR UPDATE",
                cid,
                doc.id,
            )
            if old is not None and (old[0], orjson.loads(old[1]), old[2]) == (
                doc.sha256,
                doc.metadata,
                doc.title,
            ):
                return False
            await conn.execute(f"DELETE FROM {p}_documents WHERE cid = $1 AND doc_id = $2", cid, doc.id)
            await conn.execute(
                f"INSERT INTO {p}_documents VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)",
                cid,
                doc.id,
                doc.sha256,
                meta,
                doc.title,
                len(doc.chunks),
                time.time(),
            )
            records = [
                (cid, doc.id, c.index, c.start, c.end, c.tokens, c.heading, c.text, to_blob(v))
                for c, v in zip(doc.chunks, doc.vectors, strict=True)
            ]
            if self.emb:  # COPY would need a binary codec for `vector`: one pipelined INSERT per chunk
                await conn.executemany(
                    f"INSERT INTO {p}_chunks (cid, doc_id, idx, start, stop, tokens, heading, body, vec, emb)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::real[]::vector)",
                    [(*r, pgv.as_param(v)) for r, v in zip(records, doc.vectors, strict=True)],
                )
            else:
                await conn.copy_records_to_table(
                    f"{p}_chunks",
                    columns=["cid", "doc_id", "idx", "start", "stop", "tokens", "heading", "body", "vec"],
                    records=records,
                )
            await conn.execute(f"UPDATE {p}_collections SET version = version + 1 WHERE cid = $1", cid)
        return True

    async def delete_document(self, tenant: str, name: str, doc_id: str) -> bool:
        async with self._acquire() as conn, conn.transaction():
            cid = await self._cid(conn, tenant, name)
            if cid is None:
                return False
            done = await conn.execute(
                f"DELETE FROM {self.p}_documents WHERE cid = $1 AND doc_id = $2", cid, doc_id
            )
            if done.endswith(" 0"):
                return False
            await conn.execute(f"UPDATE {self.p}_collections SET version = version + 1 WHERE cid = $1", cid)
        return True

    async def export_documents(self, tenant: str, name: str) -> list[DocumentIn]:
        p = self.p
        async with self._acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            row = await conn.fetchrow(
                f"SELECT cid, dim FROM {p}_collections WHERE tenant = $1 AND name = $2", tenant, name
            )
            if row is None:
                return []
            docs = await conn.fetch(f"SELECT * FROM {p}_documents WHERE cid = $1 ORDER BY doc_id", row["cid"])
            chunks: dict[str, list[Any]] = {}
            for r in await conn.fetch(
                f"SELECT * FROM {p}_chunks WHERE cid = $1 ORDER BY doc_id, idx", row["cid"]
            ):
                chunks.setdefault(r["doc_id"], []).append(r)
        return [exported(d, chunks.get(d["doc_id"], []), row["dim"]) for d in docs]

    # ---- search ----------------------------------------------------------------------------------------

    async def keyword_search(
        self, tenant: str, name: str, query: str, k: int, filters: Filters | None
    ) -> list[tuple[int, float]]:
        words = list(dict.fromkeys(w.lower() for w in WORD.findall(query)))[:64]
        if not words:
            return []
        where, args = _filter_sql(filters, 4)
        p = self.p
        async with self._acquire() as conn:
            cid = await self._cid(conn, tenant, name)
            if cid is None:
                return []
            rows = await conn.fetch(
                f"SELECT k.id, ts_rank_cd(k.tsv, q, 1) AS s FROM {p}_chunks k"
                f" JOIN {p}_documents d ON d.cid = k.cid AND d.doc_id = k.doc_id, to_tsquery('english', $2) q"
                f" WHERE k.cid = $1 AND k.tsv @@ q{where} ORDER BY s DESC, k.id LIMIT $3",
                cid,
                " | ".join(words),
                k,
                *args,
            )
        return [(int(r[0]), float(r[1])) for r in rows]

    async def vector_search(
        self, tenant: str, name: str, vector: F32, k: int, filters: Filters | None
    ) -> list[tuple[int, float]]:
        if not self.pgvector:
            index = await self._index(tenant, name)
            return [] if index is None else index.search(vector, k, filters)
        where, args = _filter_sql(filters, 3)
        async with self._acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT cid, dim FROM {self.p}_collections WHERE tenant = $1 AND name = $2", tenant, name
            )
            if row is None or k <= 0:
                return []
            return await pgv.search(conn, self.p, row["cid"], row["dim"], vector, k, where, args)

    async def _index(self, tenant: str, name: str) -> DenseIndex | None:
        p = self.p
        async with self._acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT cid, version, dim FROM {p}_collections WHERE tenant = $1 AND name = $2", tenant, name
            )
            if row is None:
                return None
            cached = self.dense.get(tenant, name, row["version"])
            if cached is not None:
                return cached
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                version = await conn.fetchval(
                    f"SELECT version FROM {p}_collections WHERE cid = $1", row["cid"]
                )
                metas = {
                    r[0]: orjson.loads(r[1])
                    for r in await conn.fetch(
                        f"SELECT doc_id, meta FROM {p}_documents WHERE cid = $1", row["cid"]
                    )
                }
                rows = await conn.fetch(
                    f"SELECT id, doc_id, vec FROM {p}_chunks WHERE cid = $1 ORDER BY id", row["cid"]
                )
        index = DenseIndex(
            np.asarray([r[0] for r in rows], dtype=np.int64),
            from_blobs([bytes(r[2]) for r in rows], row["dim"]),
            [metas.get(r[1], {}) for r in rows],
        )
        return self.dense.put(tenant, name, version, index)

    async def chunks(self, tenant: str, name: str, ids: list[int]) -> list[ChunkOut]:
        if not ids:
            return []
        p = self.p
        async with self._acquire() as conn:
            rows = await conn.fetch(
                f"SELECT k.id, k.doc_id, k.idx, k.start, k.stop, k.body, k.tokens, k.heading, d.meta"
                f" FROM {p}_chunks k JOIN {p}_collections c ON c.cid = k.cid"
                f" JOIN {p}_documents d ON d.cid = k.cid AND d.doc_id = k.doc_id"
                " WHERE c.tenant = $1 AND c.name = $2 AND k.id = ANY($3::bigint[])",
                tenant,
                name,
                ids,
            )
        found = {r["id"]: chunk_out(r) for r in rows}
        return [found[i] for i in ids if i in found]


def _filter_sql(filters: Filters | None, first: int) -> tuple[str, list[Any]]:
    """Metadata filters over ``d.meta`` (JSONB containment of each allowed value)."""
    if not filters:
        return "", []
    conds: list[str] = []
    args: list[Any] = []
    n = first
    for key, want in filters.items():
        values = want["$in"] if isinstance(want, dict) else [want]
        alts = []
        for v in values:
            alts.append(f"d.meta @> ${n}::jsonb")
            args.append(orjson.dumps({key: v}).decode())
            n += 1
        conds.append("(" + " OR ".join(alts) + ")")
    return " AND " + " AND ".join(conds), args
