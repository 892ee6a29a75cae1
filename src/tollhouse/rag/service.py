"""Collections and hybrid search: what the API, the CLI, the request-path stage and (later) a ``retrieve``
tool call. ``Retrieval`` owns a ``RagStore`` and the embedders; every call names the tenant.

Ingest: text → chunks (``chunker.py``) → vectors → one transaction replacing the document. A document whose
content, title and metadata are unchanged is not re-embedded (idempotent upsert by id). ``ingest_many``
embeds the chunks of many documents per call and overlaps embedding with the writes.
Search: BM25 and dense candidates, fused by reciprocal rank fusion (``score = Σ 1 / (60 + rank)``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from tollhouse.errors import InvalidRequest, NotFound
from tollhouse.rag.chunker import chunk_text
from tollhouse.rag.embedding import LOCAL, Embedders
from tollhouse.rag.loaders import DocumentError, extract
from tollhouse.stores.rag_base import F32, NAME, ChunkIn, ChunkOut, Collection, DocumentIn, Filters, RagStore
from tollhouse.types import Principal

Mode = Literal["hybrid", "bm25", "dense"]
RRF_K = 60
_NAME = re.compile(NAME)


def tenant_of(principal: Principal) -> str:
    """Collections belong to the key's team, else to the key; anonymous callers share ``anon``."""
    if principal.anonymous or principal.key_id is None:
        return "anon"
    return f"team:{principal.team}" if principal.team else f"key:{principal.key_id}"


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: ChunkOut
    score: float
    bm25_rank: int | None = None
    dense_rank: int | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    document_id: str
    status: Literal["created", "updated", "unchanged"]
    chunks: int
    tokens: int


@dataclass(frozen=True, slots=True)
class NewDocument:
    """One document of an ``ingest_many`` call."""

    id: str
    data: bytes | str
    kind: str = "text"
    metadata: dict[str, Any] | None = None
    title: str | None = None


Outcome = IngestResult | InvalidRequest


@dataclass(frozen=True, slots=True)
class _Plan:
    doc: NewDocument
    outcome: Outcome
    write: DocumentIn | None = None  # its vectors are filled in once embedded
    texts: list[str] = field(default_factory=list)  # what to embed, one text per chunk


_NO_VECTORS = np.zeros((0, 0), dtype=np.float32)
INGEST_GROUP = 64  # documents embedded per call by ``ingest_many``


def check_filters(filters: Any) -> Filters | None:
    if filters is None:
        return None
    if not isinstance(filters, dict):
        raise InvalidRequest("`filters` must be an object of metadata field → value.", param="filters")
    for key, want in filters.items():
        if not isinstance(key, str) or not key:
            raise InvalidRequest("Filter fields must be non-empty strings.", param="filters")
        values = want.get("$in") if isinstance(want, dict) else [want]
        if isinstance(want, dict) and (set(want) != {"$in"} or not isinstance(values, list) or not values):
            raise InvalidRequest(f"Filter '{key}': use a value or {{\"$in\": [values]}}.", param="filters")
        for v in values or []:
            if not isinstance(v, str | int | float | bool) or v is None:
                raise InvalidRequest(
                    f"Filter '{key}': values must be strings, numbers or booleans.", param="filters"
                )
    return filters


class Retrieval:
    def __init__(
        self,
        store: RagStore,
        embedders: Embedders,
        *,
        default_model: str = LOCAL,
        chunk_tokens: int = 160,
        chunk_overlap: int = 32,
        max_document_bytes: int = 20_000_000,
        max_chunks_per_document: int = 20_000,
    ) -> None:
        self.store = store
        self.embedders = embedders
        self.default_model = default_model
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self.max_document_bytes = max_document_bytes
        self.max_chunks = max_chunks_per_document

    async def aclose(self) -> None:
        try:
            await self.store.aclose()
        finally:
            self.embedders.close()

    # ---- collections -----------------------------------------------------------------------------------

    async def create(
        self, tenant: str, name: str, embedding_model: str | None = None, description: str = ""
    ) -> Collection:
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidRequest(
                "`name` must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit.",
                param="name",
            )
        model = embedding_model or self.default_model
        dim = (await self.embedders.get(model).embed(["dimension probe"])).shape[1]
        c = Collection(tenant, name, model, int(dim), time.time(), description=description)
        return await self.store.create_collection(c)

    async def get(self, tenant: str, name: str) -> Collection:
        c = await self.store.get_collection(tenant, name)
        if c is None:
            raise NotFound(f"No collection named '{name}'.", param="collection")
        return c

    async def collections(self, tenant: str) -> list[Collection]:
        return await self.store.list_collections(tenant)

    async def delete(self, tenant: str, name: str) -> None:
        if not await self.store.delete_collection(tenant, name):
            raise NotFound(f"No collection named '{name}'.", param="collection")

    async def reembed(self, tenant: str, name: str, model: str) -> Collection:
        """Embed every chunk again with ``model`` and make it the collection's model."""
        await self.get(tenant, name)
        embedder = self.embedders.get(model)
        rows = await self.store.chunk_texts(tenant, name)
        vectors = await embedder.embed([t for _, t in rows]) if rows else None
        dim = vectors.shape[1] if vectors is not None else (await embedder.embed(["probe"])).shape[1]
        if vectors is None:
            vectors = np.zeros((0, dim), dtype=np.float32)
        await self.store.set_embedding_model(tenant, name, model, int(dim), vectors)
        return await self.get(tenant, name)

    async def copy_to(self, target: Retrieval, tenant: str, name: str) -> Collection:
        """Copy a collection, vectors included, into ``target``'s store (another backend): nothing is embedded
        again. ``Conflict`` when the target already has it."""
        c = await self.get(tenant, name)
        await target.store.create_collection(c)
        for doc in await self.store.export_documents(tenant, name):
            await target.store.put_document(tenant, name, doc)
        return await target.get(tenant, name)

    # ---- documents -------------------------------------------------------------------------------------

    async def ingest(
        self,
        tenant: str,
        name: str,
        doc_id: str,
        data: bytes | str,
        *,
        kind: str = "text",
        metadata: dict[str, Any] | None = None,
        title: str | None = None,
    ) -> IngestResult:
        """Add or replace one document. ``InvalidRequest`` (nothing written) for a document that cannot be
        read, is empty or too large."""
        [res] = await self.ingest_many(tenant, name, [NewDocument(doc_id, data, kind, metadata, title)])
        if isinstance(res, InvalidRequest):
            raise res
        return res

    async def ingest_many(
        self,
        tenant: str,
        name: str,
        docs: Iterable[NewDocument],
        *,
        group: int = INGEST_GROUP,
        done: Callable[[NewDocument, Outcome], None] | None = None,
    ) -> list[Outcome]:
        """Add or replace many documents: one outcome per document, in order, an ``InvalidRequest`` for each
        one that cannot be read, is empty or too large (nothing of it is written; the others are).

        Documents go in groups of ``group``: a group's chunks are embedded in one call (spread over the
        encoder threads, so every thread works even when documents have one or two chunks each) while the
        previous group is written, one transaction per document. ``done`` is called as each is settled."""
        coll = await self.get(tenant, name)
        embedder = self.embedders.get(coll.embedding_model)
        outcomes: list[Outcome] = []
        ready: tuple[list[_Plan], F32 | None] | None = None
        it = iter(docs)
        while batch := list(itertools.islice(it, max(1, group))):
            plans = [await self._plan(tenant, coll, d) for d in batch]
            texts = [t for p in plans for t in p.texts]
            embedding = asyncio.ensure_future(embedder.embed(texts)) if texts else None
            try:
                if ready is not None:
                    await self._write(tenant, name, *ready, done)
            finally:
                vectors = await embedding if embedding is not None else None
            ready = (plans, vectors)
            outcomes.extend(p.outcome for p in plans)
        if ready is not None:
            await self._write(tenant, name, *ready, done)
        return outcomes

    async def _plan(self, tenant: str, coll: Collection, d: NewDocument) -> _Plan:
        """Read and chunk one document: its outcome, and what to embed and write (nothing when unchanged
        or unreadable)."""
        if not isinstance(d.id, str) or not 0 < len(d.id) <= 256:
            return _Plan(d, InvalidRequest("`id` must be a string of 1-256 characters.", param="id"))
        metadata = {} if d.metadata is None else d.metadata
        if not isinstance(metadata, dict):
            return _Plan(d, InvalidRequest("`metadata` must be an object.", param="metadata"))
        raw = d.data.encode() if isinstance(d.data, str) else d.data
        try:
            text = extract(d.id, raw, d.kind, self.max_document_bytes)
        except DocumentError as exc:
            return _Plan(d, InvalidRequest(str(exc), param="document"))
        digest = hashlib.sha256(
            f"{coll.embedding_model}\0{self.chunk_tokens}\0{self.chunk_overlap}\0".encode() + text.encode()
        ).hexdigest()
        old = await self.store.document(tenant, coll.name, d.id)
        if old is not None and old.sha256 == digest and old.metadata == metadata and old.title == d.title:
            return _Plan(d, IngestResult(d.id, "unchanged", old.chunks, 0))
        chunks = chunk_text(text, self.chunk_tokens, self.chunk_overlap)
        if len(chunks) > self.max_chunks:
            return _Plan(
                d,
                InvalidRequest(
                    f"{d.id}: {len(chunks)} chunks is over the limit of {self.max_chunks}.", param="document"
                ),
            )
        status: Literal["created", "updated"] = "created" if old is None else "updated"
        return _Plan(
            d,
            IngestResult(d.id, status, len(chunks), sum(c.tokens for c in chunks)),
            DocumentIn(
                d.id,
                digest,
                metadata,
                [ChunkIn(c.index, c.start, c.end, c.text, c.tokens, c.heading) for c in chunks],
                _NO_VECTORS,
                d.title,
            ),
            [f"{d.title}: {c.text}" if d.title and c.index == 0 else c.text for c in chunks],
        )

    async def _write(
        self,
        tenant: str,
        name: str,
        plans: list[_Plan],
        vectors: F32 | None,
        done: Callable[[NewDocument, Outcome], None] | None,
    ) -> None:
        row = 0
        for p in plans:
            if p.write is not None and vectors is not None:
                rows = vectors[row : row + len(p.texts)]
                row += len(p.texts)
                await self.store.put_document(tenant, name, dataclasses.replace(p.write, vectors=rows))
            if done is not None:
                done(p.doc, p.outcome)

    async def delete_document(self, tenant: str, name: str, doc_id: str) -> None:
        await self.get(tenant, name)
        if not await self.store.delete_document(tenant, name, doc_id):
            raise NotFound(f"Collection '{name}' has no document '{doc_id}'.", param="document_id")

    # ---- search ----------------------------------------------------------------------------------------

    async def search(
        self,
        collection: str,
        query: str,
        k: int = 5,
        filters: Filters | None = None,
        tenant: str = "anon",
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        """The ``k`` best chunks of ``collection`` (of ``tenant``) for ``query``. ``NotFound`` when the tenant
        has no such collection; ``InvalidRequest`` for a bad ``k``, mode or filter."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidRequest("`query` must be a non-empty string.", param="query")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 100:
            raise InvalidRequest("`k` must be an integer from 1 to 100.", param="k")
        if mode not in ("hybrid", "bm25", "dense"):
            raise InvalidRequest("`mode` must be one of hybrid, bm25, dense.", param="mode")
        filters = check_filters(filters)
        coll = await self.get(tenant, collection)
        depth = max(k * 4, 40) if mode == "hybrid" else k
        keyword: list[tuple[int, float]] = []
        dense: list[tuple[int, float]] = []
        if mode != "dense":
            keyword = await self.store.keyword_search(tenant, collection, query, depth, filters)
        if mode != "bm25":
            vector = (await self.embedders.get(coll.embedding_model).embed([query]))[0]
            dense = await self.store.vector_search(tenant, collection, vector, depth, filters)
        ranked = fuse(keyword, dense, k) if mode == "hybrid" else [(i, s) for i, s in (keyword or dense)][:k]
        chunks = {c.id: c for c in await self.store.chunks(tenant, collection, [i for i, _ in ranked])}
        kr = {cid: r for r, (cid, _) in enumerate(keyword, 1)}
        dr = {cid: r for r, (cid, _) in enumerate(dense, 1)}
        return [Hit(chunks[i], s, kr.get(i), dr.get(i)) for i, s in ranked if i in chunks]


def fuse(keyword: list[tuple[int, float]], dense: list[tuple[int, float]], k: int) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of two ranked lists: the ``k`` best (id, fused score)."""
    scores: dict[int, float] = {}
    for ranked in (keyword, dense):
        for rank, (cid, _) in enumerate(ranked, 1):
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])[:k]
