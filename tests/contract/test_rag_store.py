"""Contract for the retrieval stores (``DocumentStore`` + ``VectorIndex``) over SQLite, the machine's
PostgreSQL (no pgvector: the numpy fallback) and a PostgreSQL with pgvector (pgserver's; dense search in SQL),
each test in a schema of its own: collections per tenant, idempotent upserts, deletion of chunks and vectors,
full-text and dense search, metadata filters, re-embedding, tenant isolation."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from tollhouse.errors import Conflict
from tollhouse.rag.chunker import chunk_text
from tollhouse.stores.rag_base import ChunkIn, Collection, DocumentIn, RagStore
from tollhouse.stores.rag_postgres import PgRagStore
from tollhouse.stores.rag_sqlite import SqliteRagStore

DIM = 4


@pytest.fixture(params=["sqlite", "postgres", "pgvector"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RagStore]:
    s: RagStore
    if request.param == "sqlite":
        s = SqliteRagStore(str(tmp_path / "rag.db"))
    elif request.param == "postgres":
        s = PgRagStore(request.getfixturevalue("pg_dsn"), "ragt", vectors="fallback")
    else:
        s = PgRagStore(request.getfixturevalue("pgvector_dsn"), "ragt", vectors="pgvector")
    await s.open()
    if isinstance(s, PgRagStore):
        assert s.pgvector is (request.param == "pgvector")
    try:
        yield s
    finally:
        await s.aclose()


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def doc(doc_id: str, text: str, vec: np.ndarray, sha: str = "h1", **meta: object) -> DocumentIn:
    chunks = [ChunkIn(c.index, c.start, c.end, c.text, c.tokens, c.heading) for c in chunk_text(text, 50, 5)]
    return DocumentIn(doc_id, sha, dict(meta), chunks, np.stack([vec] * len(chunks)))


async def make(s: RagStore, tenant: str = "t1", name: str = "c") -> None:
    await s.create_collection(Collection(tenant, name, "m", DIM, time.time()))


async def test_collections_are_per_tenant(store: RagStore) -> None:
    await make(store, "t1", "docs")
    with pytest.raises(Conflict):
        await make(store, "t1", "docs")
    await make(store, "t2", "docs")  # the same name in another tenant is another collection
    assert [c.name for c in await store.list_collections("t1")] == ["docs"]
    assert await store.get_collection("t3", "docs") is None
    assert await store.delete_collection("t2", "docs") is True
    assert await store.delete_collection("t2", "docs") is False
    assert (await store.get_collection("t1", "docs")) is not None


async def test_upsert_is_idempotent_and_replaces_chunks(store: RagStore) -> None:
    await make(store)
    d = doc("a", "Cats purr when content. Dogs bark at strangers.", unit(1, 0, 0, 0), kind="pets")
    assert await store.put_document("t1", "c", d) is True
    assert await store.put_document("t1", "c", d) is False
    c = await store.get_collection("t1", "c")
    assert c is not None and (c.documents, c.chunks) == (1, 1)
    assert (
        await store.put_document("t1", "c", doc("a", "Parrots talk. " * 40, unit(0, 1, 0, 0), "h2")) is True
    )
    c = await store.get_collection("t1", "c")
    assert c is not None and c.documents == 1 and c.chunks > 1
    assert await store.keyword_search("t1", "c", "cats", 5, None) == []
    info = await store.document("t1", "c", "a")
    assert info is not None and info.sha256 == "h2" and info.metadata == {}


async def test_keyword_and_dense_search_with_filters(store: RagStore) -> None:
    await make(store)
    await store.put_document(
        "t1", "c", doc("cats", "Cats purr when they are content.", unit(1, 0, 0, 0), kind="a")
    )
    await store.put_document(
        "t1", "c", doc("dogs", "Dogs bark at strangers and purr never.", unit(0, 1, 0, 0), kind="b")
    )
    await store.put_document("t1", "c", doc("fish", "Fish swim in schools.", unit(0.7, 0.7, 0, 0), kind="b"))
    kw = await store.keyword_search("t1", "c", "purr, cats!", 5, None)
    rows = await store.chunks("t1", "c", [i for i, _ in kw])
    assert [r.document_id for r in rows][:1] == ["cats"] and {r.document_id for r in rows} == {"cats", "dogs"}
    assert all(s > 0 for _, s in kw)
    dense = await store.vector_search("t1", "c", unit(1, 0.1, 0, 0), 3, None)
    ids = [r.document_id for r in await store.chunks("t1", "c", [i for i, _ in dense])]
    assert ids == ["cats", "fish", "dogs"]
    assert dense[0][1] == pytest.approx(float(unit(1, 0.1, 0, 0) @ unit(1, 0, 0, 0)), abs=1e-5)
    only_b = await store.vector_search("t1", "c", unit(1, 0, 0, 0), 3, {"kind": "b"})
    assert [r.document_id for r in await store.chunks("t1", "c", [i for i, _ in only_b])] == ["fish", "dogs"]
    kw_b = await store.keyword_search("t1", "c", "purr", 5, {"kind": {"$in": ["b", "z"]}})
    assert [r.document_id for r in await store.chunks("t1", "c", [i for i, _ in kw_b])] == ["dogs"]
    assert await store.keyword_search("t1", "c", "purr", 5, {"kind": "nope"}) == []
    assert await store.keyword_search("t1", "c", '"* OR NEAR(', 5, None) == []  # syntax is taken literally


async def test_delete_removes_chunks_and_vectors(store: RagStore) -> None:
    await make(store)
    await store.put_document("t1", "c", doc("a", "Alpha beta gamma.", unit(1, 0, 0, 0)))
    await store.put_document("t1", "c", doc("b", "Delta epsilon.", unit(0, 1, 0, 0)))
    assert len(await store.vector_search("t1", "c", unit(1, 0, 0, 0), 5, None)) == 2
    assert await store.delete_document("t1", "c", "a") is True
    assert await store.delete_document("t1", "c", "a") is False
    hits = await store.vector_search("t1", "c", unit(1, 0, 0, 0), 5, None)
    assert [r.document_id for r in await store.chunks("t1", "c", [i for i, _ in hits])] == ["b"]
    assert await store.keyword_search("t1", "c", "alpha", 5, None) == []
    assert await store.delete_collection("t1", "c") is True
    assert await store.vector_search("t1", "c", unit(1, 0, 0, 0), 5, None) == []


async def test_reembedding_replaces_every_vector(store: RagStore) -> None:
    await make(store)
    await store.put_document("t1", "c", doc("a", "Alpha.", unit(1, 0, 0, 0)))
    await store.put_document("t1", "c", doc("b", "Beta.", unit(0, 1, 0, 0)))
    rows = await store.chunk_texts("t1", "c")
    assert [t for _, t in rows] == ["Alpha.", "Beta."]
    new = np.stack([unit(0, 0, 1, 0, 0, 0), unit(0, 0, 0, 1, 0, 0)])
    await store.set_embedding_model("t1", "c", "m2", 6, new)
    c = await store.get_collection("t1", "c")
    assert c is not None and (c.embedding_model, c.dim) == ("m2", 6)
    hits = await store.vector_search("t1", "c", unit(0, 0, 0, 1, 0, 0), 1, None)
    assert [r.document_id for r in await store.chunks("t1", "c", [i for i, _ in hits])] == ["b"]


async def test_another_tenant_sees_nothing(store: RagStore) -> None:
    await make(store, "t1", "c")
    await store.put_document("t1", "c", doc("secret", "The launch code is swordfish.", unit(1, 0, 0, 0)))
    ids = [i for i, _ in await store.keyword_search("t1", "c", "swordfish", 5, None)]
    assert ids
    assert await store.keyword_search("t2", "c", "swordfish", 5, None) == []
    assert await store.vector_search("t2", "c", unit(1, 0, 0, 0), 5, None) == []
    assert await store.chunks("t2", "c", ids) == []  # guessed chunk ids of another tenant
    await make(store, "t2", "c")
    assert await store.chunks("t2", "c", ids) == []
    assert await store.document("t2", "c", "secret") is None
    assert await store.delete_document("t2", "c", "secret") is False
    assert await store.document("t1", "c", "secret") is not None


async def test_export_gives_back_what_was_put(store: RagStore) -> None:
    await make(store)
    d = doc("a", "Alpha beta gamma. " * 30, unit(1, 2, 3, 4), "h9", team="x")
    await store.put_document("t1", "c", d)
    [out] = await store.export_documents("t1", "c")
    assert (out.id, out.sha256, out.metadata, out.chunks) == (d.id, d.sha256, d.metadata, d.chunks)
    assert np.allclose(out.vectors, d.vectors)
    assert await store.export_documents("t2", "c") == []
