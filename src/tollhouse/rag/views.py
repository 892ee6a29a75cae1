"""JSON shapes of collections, documents and search hits (API, CLI and citations share them)."""

from __future__ import annotations

from typing import Any

from tollhouse.rag.service import Hit
from tollhouse.stores.rag_base import Collection, DocumentInfo


def collection(c: Collection) -> dict[str, Any]:
    return {
        "id": c.name,
        "object": "collection",
        "embedding_model": c.embedding_model,
        "dimensions": c.dim,
        "documents": c.documents,
        "chunks": c.chunks,
        "created": int(c.created),
        "description": c.description,
    }


def document(d: DocumentInfo) -> dict[str, Any]:
    return {
        "id": d.id,
        "object": "document",
        "chunks": d.chunks,
        "title": d.title,
        "metadata": d.metadata,
        "created": int(d.created),
    }


def hit(h: Hit, marker: int | None = None, text: bool = True) -> dict[str, Any]:
    c = h.chunk
    out: dict[str, Any] = {}
    if marker is not None:
        out["marker"] = f"[{marker}]"
    out.update(
        {"document_id": c.document_id, "chunk": c.index, "score": round(h.score, 6), "span": [c.start, c.end]}
    )
    if text:
        out["text"] = c.text
    out.update(
        {"heading": c.heading, "metadata": c.metadata, "bm25_rank": h.bm25_rank, "dense_rank": h.dense_rank}
    )
    return out
