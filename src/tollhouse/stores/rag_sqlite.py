"""The embedded retrieval store: one SQLite file holding collections, documents, chunks, their vectors (as
float32 blobs) and an FTS5 index (BM25, Porter stemming). Dense search loads a collection's vectors into
memory once per version (``dense.py``). Every query is scoped by tenant through the collections table.
"""

from __future__ import annotations

import re
import sqlite3
import time
from typing import Any

import numpy as np
import orjson

from tollhouse.errors import Conflict
from tollhouse.stores.rag_base import (
    F32,
    ChunkOut,
    Collection,
    DocumentIn,
    DocumentInfo,
    Filters,
    match,
)
from tollhouse.stores.rag_dense import DenseCache, DenseIndex, from_blobs, to_blob
from tollhouse.stores.rag_rows import chunk_out, exported
from tollhouse.stores.sql import SqliteDB

SCHEMA = """
CREATE TABLE IF NOT EXISTS rag_collections (
  cid INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, name TEXT NOT NULL, model TEXT NOT NULL,
  dim INTEGER NOT NULL, created REAL NOT NULL, description TEXT NOT NULL DEFAULT '',
  version INTEGER NOT NULL DEFAULT 0, UNIQUE (tenant, name));
CREATE TABLE IF NOT EXISTS rag_documents (
  cid INTEGER NOT NULL, doc_id TEXT NOT NULL, sha256 TEXT NOT NULL, meta TEXT NOT NULL, title TEXT,
  chunks INTEGER NOT NULL, created REAL NOT NULL, PRIMARY KEY (cid, doc_id));
CREATE TABLE IF NOT EXISTS rag_chunks (
  id INTEGER PRIMARY KEY AUTOINCREMENT, cid INTEGER NOT NULL, doc_id TEXT NOT NULL, idx INTEGER NOT NULL,
  start INTEGER NOT NULL, stop INTEGER NOT NULL, tokens INTEGER NOT NULL, heading TEXT, body TEXT NOT NULL,
  vec BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS rag_chunks_doc ON rag_chunks (cid, doc_id);
CREATE VIRTUAL TABLE IF NOT EXISTS rag_fts USING fts5(body, tokenize = 'porter unicode61');
"""
WORD = re.compile(r"\w+", re.UNICODE)
# Words too common to rank by: an OR over them matches nearly every chunk and makes BM25 slow (PostgreSQL's
# english configuration drops the same kind of words).
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "too",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)


def fts_query(query: str) -> str:
    """Any of the query's words but the commonest (quoted: FTS5 syntax in user text is taken literally)."""
    words = list(dict.fromkeys(w.lower() for w in WORD.findall(query)))
    kept = [w for w in words if w not in STOPWORDS] or words
    return " OR ".join(f'"{w}"' for w in kept[:64])


class SqliteRagStore:
    def __init__(self, path: str, exact_limit: int = 20_000) -> None:
        self.db = SqliteDB(path, "retrieval store (SQLite)")
        self.dense = DenseCache(exact_limit)
        self.db.open_lazily(SCHEMA)  # the file appears with the first collection or query

    async def open(self) -> None:
        await self.db.open(SCHEMA)

    async def aclose(self) -> None:
        await self.db.aclose()

    # ---- collections -----------------------------------------------------------------------------------

    async def create_collection(self, c: Collection) -> Collection:
        def tx(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO rag_collections (tenant, name, model, dim, created, description)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (c.tenant, c.name, c.embedding_model, c.dim, c.created, c.description),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"Collection '{c.name}' exists already.", param="name") from None

        await self.db.transaction(tx)
        return c

    def _row(self, r: sqlite3.Row) -> Collection:
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

    _SELECT = (
        "SELECT c.*, (SELECT count(*) FROM rag_documents d WHERE d.cid = c.cid) AS docs,"
        " (SELECT count(*) FROM rag_chunks k WHERE k.cid = c.cid) AS nchunks FROM rag_collections c"
    )

    async def get_collection(self, tenant: str, name: str) -> Collection | None:
        rows = await self.db.run(
            lambda conn: conn.execute(
                self._SELECT + " WHERE tenant = ? AND name = ?", (tenant, name)
            ).fetchall()
        )
        return self._row(rows[0]) if rows else None

    async def list_collections(self, tenant: str) -> list[Collection]:
        rows = await self.db.run(
            lambda conn: conn.execute(self._SELECT + " WHERE tenant = ? ORDER BY name", (tenant,)).fetchall()
        )
        return [self._row(r) for r in rows]

    @staticmethod
    def _cid(conn: sqlite3.Connection, tenant: str, name: str) -> int | None:
        row = conn.execute(
            "SELECT cid FROM rag_collections WHERE tenant = ? AND name = ?", (tenant, name)
        ).fetchone()
        return None if row is None else int(row[0])

    async def delete_collection(self, tenant: str, name: str) -> bool:
        def tx(conn: sqlite3.Connection) -> bool:
            cid = self._cid(conn, tenant, name)
            if cid is None:
                return False
            conn.execute(
                "DELETE FROM rag_fts WHERE rowid IN (SELECT id FROM rag_chunks WHERE cid = ?)", (cid,)
            )
            conn.execute("DELETE FROM rag_chunks WHERE cid = ?", (cid,))
            conn.execute("DELETE FROM rag_documents WHERE cid = ?", (cid,))
            conn.execute("DELETE FROM rag_collections WHERE cid = ?", (cid,))
            return True

        self.dense.drop(tenant, name)
        return await self.db.transaction(tx)

    async def chunk_texts(self, tenant: str, name: str) -> list[tuple[int, str]]:
        def run(conn: sqlite3.Connection) -> list[tuple[int, str]]:
            cid = self._cid(conn, tenant, name)
            rows = conn.execute(
                "SELECT id, body FROM rag_chunks WHERE cid = ? ORDER BY id", (cid,)
            ).fetchall()
            return [(int(r[0]), str(r[1])) for r in rows]

        return await self.db.run(run)

    async def set_embedding_model(self, tenant: str, name: str, model: str, dim: int, vectors: F32) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            cid = self._cid(conn, tenant, name)
            ids = [r[0] for r in conn.execute("SELECT id FROM rag_chunks WHERE cid = ? ORDER BY id", (cid,))]
            if len(ids) != len(vectors):
                raise RuntimeError("the collection changed while it was re-embedded; try again")
            conn.executemany(
                "UPDATE rag_chunks SET vec = ? WHERE id = ?",
                [(to_blob(v), i) for i, v in zip(ids, vectors, strict=True)],
            )
            conn.execute(
                "UPDATE rag_collections SET model = ?, dim = ?, version = version + 1 WHERE cid = ?",
                (model, dim, cid),
            )

        await self.db.transaction(tx)

    # ---- documents -------------------------------------------------------------------------------------

    @staticmethod
    def _info(r: sqlite3.Row) -> DocumentInfo:
        return DocumentInfo(
            r["doc_id"], r["sha256"], orjson.loads(r["meta"]), r["chunks"], r["created"], r["title"]
        )

    async def document(self, tenant: str, name: str, doc_id: str) -> DocumentInfo | None:
        def run(conn: sqlite3.Connection) -> DocumentInfo | None:
            r = conn.execute(
                "SELECT d.* FROM rag_documents d JOIN rag_collections c ON c.cid = d.cid"
                " WHERE c.tenant = ? AND c.name = ? AND d.doc_id = ?",
                (tenant, name, doc_id),
            ).fetchone()
            return None if r is None else self._info(r)

        return await self.db.run(run)

    async def list_documents(
        self, tenant: str, name: str, limit: int, after: str | None
    ) -> list[DocumentInfo]:
        def run(conn: sqlite3.Connection) -> list[DocumentInfo]:
            rows = conn.execute(
                "SELECT d.* FROM rag_documents d JOIN rag_collections c ON c.cid = d.cid"
                " WHERE c.tenant = ? AND c.name = ? AND d.doc_id > ? ORDER BY d.doc_id LIMIT ?",
                (tenant, name, after or "", limit),
            ).fetchall()
            return [self._info(r) for r in rows]

        return await self.db.run(run)

    async def put_document(self, tenant: str, name: str, doc: DocumentIn) -> bool:
        meta = orjson.dumps(doc.metadata, option=orjson.OPT_SORT_KEYS).decode()

        def tx(conn: sqlite3.Connection) -> bool:
            cid = self._cid(conn, tenant, name)
            if cid is None:
                raise RuntimeError(f"collection {name} vanished")
            old = conn.execute(
                "SELECT sha256, meta, title FROM rag_documents WHERE cid = ? AND doc_id = ?", (cid, doc.id)
            ).fetchone()
            if old is not None and (old[0], old[1], old[2]) == (doc.sha256, meta, doc.title):
                return False
            self._delete_doc(conn, cid, doc.id)
            conn.execute(
                "INSERT INTO rag_documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                (cid, doc.id, doc.sha256, meta, doc.title, len(doc.chunks), time.time()),
            )
            for ch, vec in zip(doc.chunks, doc.vectors, strict=True):
                cur = conn.execute(
                    "INSERT INTO rag_chunks (cid, doc_id, idx, start, stop, tokens, heading, body, vec)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (cid, doc.id, ch.index, ch.start, ch.end, ch.tokens, ch.heading, ch.text, to_blob(vec)),
                )
                conn.execute("INSERT INTO rag_fts (rowid, body) VALUES (?, ?)", (cur.lastrowid, ch.text))
            conn.execute("UPDATE rag_collections SET version = version + 1 WHERE cid = ?", (cid,))
            return True

        return await self.db.transaction(tx)

    @staticmethod
    def _delete_doc(conn: sqlite3.Connection, cid: int, doc_id: str) -> bool:
        conn.execute(
            "DELETE FROM rag_fts WHERE rowid IN (SELECT id FROM rag_chunks WHERE cid = ? AND doc_id = ?)",
            (cid, doc_id),
        )
        conn.execute("DELETE FROM rag_chunks WHERE cid = ? AND doc_id = ?", (cid, doc_id))
        return (
            conn.execute("DELETE FROM rag_documents WHERE cid = ? AND doc_id = ?", (cid, doc_id)).rowcount > 0
        )

    async def delete_document(self, tenant: str, name: str, doc_id: str) -> bool:
        def tx(conn: sqlite3.Connection) -> bool:
            cid = self._cid(conn, tenant, name)
            if cid is None or not self._delete_doc(conn, cid, doc_id):
                return False
            conn.execute("UPDATE rag_collections SET version = version + 1 WHERE cid = ?", (cid,))
            return True

        return await self.db.transaction(tx)

    async def export_documents(self, tenant: str, name: str) -> list[DocumentIn]:
        def run(conn: sqlite3.Connection) -> list[DocumentIn]:
            row = conn.execute(
                "SELECT cid, dim FROM rag_collections WHERE tenant = ? AND name = ?", (tenant, name)
            ).fetchone()
            if row is None:
                return []
            docs = conn.execute(
                "SELECT * FROM rag_documents WHERE cid = ? ORDER BY doc_id", (row[0],)
            ).fetchall()
            chunks: dict[str, list[sqlite3.Row]] = {}
            for r in conn.execute("SELECT * FROM rag_chunks WHERE cid = ? ORDER BY doc_id, idx", (row[0],)):
                chunks.setdefault(r["doc_id"], []).append(r)
            return [exported(d, chunks.get(d["doc_id"], []), row[1]) for d in docs]

        return await self.db.run(run)

    # ---- search ----------------------------------------------------------------------------------------

    async def keyword_search(
        self, tenant: str, name: str, query: str, k: int, filters: Filters | None
    ) -> list[tuple[int, float]]:
        q = fts_query(query)
        if not q:
            return []
        where, args = _filter_sql(filters)

        def run(conn: sqlite3.Connection) -> list[tuple[int, float]]:
            cid = self._cid(conn, tenant, name)
            if cid is None:
                return []
            rows = conn.execute(
                "SELECT k.id, -rank AS s FROM rag_fts JOIN rag_chunks k ON k.id = rag_fts.rowid"
                + (" JOIN rag_documents d ON d.cid = k.cid AND d.doc_id = k.doc_id" if where else "")
                + f" WHERE rag_fts MATCH ? AND k.cid = ?{where} ORDER BY rank LIMIT ?",
                (q, cid, *args, k),
            ).fetchall()
            return [(int(r[0]), float(r[1])) for r in rows]

        return await self.db.run(run)

    async def vector_search(
        self, tenant: str, name: str, vector: F32, k: int, filters: Filters | None
    ) -> list[tuple[int, float]]:
        index = await self._index(tenant, name)
        return [] if index is None else index.search(vector, k, filters)

    async def _index(self, tenant: str, name: str) -> DenseIndex | None:
        def load(conn: sqlite3.Connection) -> DenseIndex | None:
            row = conn.execute(
                "SELECT cid, version, dim FROM rag_collections WHERE tenant = ? AND name = ?", (tenant, name)
            ).fetchone()
            if row is None:
                return None
            cached = self.dense.get(tenant, name, row[1])
            if cached is not None:
                return cached
            metas = {
                r[0]: orjson.loads(r[1])
                for r in conn.execute("SELECT doc_id, meta FROM rag_documents WHERE cid = ?", (row[0],))
            }
            rows = conn.execute(
                "SELECT id, doc_id, vec FROM rag_chunks WHERE cid = ? ORDER BY id", (row[0],)
            ).fetchall()
            index = DenseIndex(
                np.asarray([r[0] for r in rows], dtype=np.int64),
                from_blobs([r[2] for r in rows], row[2]),
                [metas.get(r[1], {}) for r in rows],
            )
            return self.dense.put(tenant, name, row[1], index)

        return await self.db.run(load)

    async def chunks(self, tenant: str, name: str, ids: list[int]) -> list[ChunkOut]:
        if not ids:
            return []

        def run(conn: sqlite3.Connection) -> list[ChunkOut]:
            marks = ",".join("?" * len(ids))
            rows = conn.execute(
                "SELECT k.*, d.meta FROM rag_chunks k JOIN rag_collections c ON c.cid = k.cid"
                " JOIN rag_documents d ON d.cid = k.cid AND d.doc_id = k.doc_id"
                f" WHERE c.tenant = ? AND c.name = ? AND k.id IN ({marks})",
                (tenant, name, *ids),
            ).fetchall()
            return [chunk_out(r) for r in rows]

        found = {c.id: c for c in await self.db.run(run)}
        return [found[i] for i in ids if i in found]


def _filter_sql(filters: Filters | None) -> tuple[str, list[Any]]:
    """Metadata filters as SQL over ``d.meta`` (JSON); values compared as JSON text."""
    if not filters:
        return "", []
    conds: list[str] = []
    args: list[Any] = []
    for key, want in filters.items():
        path = "$." + '"' + key.replace('"', "") + '"'
        values = want["$in"] if isinstance(want, dict) else [want]
        conds.append(f"json_extract(d.meta, ?) IN ({','.join('?' * len(values))})")
        args.append(path)
        args.extend(_sql_value(v) for v in values)
    return " AND " + " AND ".join(conds), args


def _sql_value(v: Any) -> Any:
    return int(v) if isinstance(v, bool) else v


__all__ = ["SqliteRagStore", "match"]
