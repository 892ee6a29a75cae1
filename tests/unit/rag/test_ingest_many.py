"""``Retrieval.ingest_many`` against a real SQLite store and the embedded encoder: the same chunks and vectors
as ``ingest`` one document at a time, outcomes in order with bad documents failing alone, nothing embedded
again when nothing changed, and ``done`` called once per document."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from tollhouse.errors import InvalidRequest
from tollhouse.rag.embedding import Embedders, LocalEmbedder
from tollhouse.rag.service import IngestResult, NewDocument, Outcome, Retrieval
from tollhouse.stores.rag_sqlite import SqliteRagStore

T = "team:red"
LONG = " ".join(f"Sentence number {i} talks about the harbour crane schedule." for i in range(60))
DOCS = [
    NewDocument("leave", "# Leave\nEveryone gets 27 days of paid leave.", "markdown", {"dept": "hr"}),
    NewDocument("long", LONG, title="Cranes"),
    NewDocument("empty", "   "),
    NewDocument("office", "<h1>Office</h1><p>The Wi-Fi network is called heron-5g.</p>", "html"),
    NewDocument("bad-meta", "text", metadata="not a dict"),  # type: ignore[arg-type]
    NewDocument("parking", "Parking costs 14 euros per month.", title="Parking"),
]


def _rag(path: Path, threads: int) -> Retrieval:
    return Retrieval(SqliteRagStore(str(path)), Embedders(LocalEmbedder(threads=threads)), chunk_tokens=48)


async def test_same_chunks_and_vectors_as_one_at_a_time(tmp_path: Path) -> None:
    one, many = _rag(tmp_path / "one.db", 1), _rag(tmp_path / "many.db", 2)
    settled: list[tuple[str, Outcome]] = []
    try:
        for rag in (one, many):
            await rag.create(T, "hb")
        for d in DOCS:
            with contextlib.suppress(InvalidRequest):  # the same documents fail as in the batch
                await one.ingest(T, "hb", d.id, d.data, kind=d.kind, metadata=d.metadata, title=d.title)
        outcomes = await many.ingest_many(
            T, "hb", iter(DOCS), group=2, done=lambda d, o: settled.append((d.id, o))
        )
        a, b = await one.store.export_documents(T, "hb"), await many.store.export_documents(T, "hb")
    finally:
        await one.aclose()
        await many.aclose()

    assert [d for d, _ in settled] == [d.id for d in DOCS]
    assert [o for _, o in settled] == outcomes
    assert [type(o) for o in outcomes] == [
        IngestResult, IngestResult, InvalidRequest, IngestResult, InvalidRequest, IngestResult
    ]  # fmt: skip
    assert "empty" in str(outcomes[2]) and "metadata" in str(outcomes[4])
    long = outcomes[1]
    assert isinstance(long, IngestResult) and long.status == "created" and long.chunks > 4
    assert [d.id for d in a] == [d.id for d in b] == ["leave", "long", "office", "parking"]
    for x, y in zip(a, b, strict=True):
        assert (x.sha256, x.metadata, x.title, x.chunks) == (y.sha256, y.metadata, y.title, y.chunks)
        assert x.vectors.shape == y.vectors.shape == (len(x.chunks), 384)
        np.testing.assert_allclose(x.vectors, y.vectors, atol=1e-5)  # one forward pass per text either way
    cranes = b[1].vectors
    assert float(cranes[0] @ cranes[1]) < 0.999  # rows belong to their own chunk, not shifted copies


async def test_unchanged_documents_are_left_alone_and_changed_ones_replaced(tmp_path: Path) -> None:
    rag = _rag(tmp_path / "rag.db", 2)
    try:
        await rag.create(T, "hb")
        await rag.ingest_many(T, "hb", DOCS)
        changed = NewDocument("parking", "Parking costs 15 euros per month.", title="Parking")
        again = await rag.ingest_many(T, "hb", [*DOCS[:-1], changed], group=3)
        hits = await rag.search("hb", "how much is parking", 1, tenant=T)
    finally:
        await rag.aclose()
    statuses = [o.status if isinstance(o, IngestResult) else "failed" for o in again]
    assert statuses == ["unchanged", "unchanged", "failed", "unchanged", "failed", "updated"]
    assert hits[0].chunk.document_id == "parking" and "15 euros" in hits[0].chunk.text
