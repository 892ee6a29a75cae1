"""Rows of the retrieval stores as their records: the same columns in SQLite and PostgreSQL, so one mapping
serves both backends."""

from __future__ import annotations

from typing import Any

import orjson

from tollhouse.stores.rag_base import ChunkIn, ChunkOut, DocumentIn
from tollhouse.stores.rag_dense import from_blobs


def chunk_out(r: Any) -> ChunkOut:
    """A chunk row joined with its document's ``meta``."""
    return ChunkOut(
        r["id"], r["doc_id"], r["idx"], r["start"], r["stop"], r["body"], r["tokens"], r["heading"],
        orjson.loads(r["meta"]),
    )  # fmt: skip


def exported(d: Any, rows: list[Any], dim: int) -> DocumentIn:
    """A document row and its chunk rows (with vectors), as an ingestable document (``copy_to``)."""
    return DocumentIn(
        d["doc_id"],
        d["sha256"],
        orjson.loads(d["meta"]),
        [ChunkIn(r["idx"], r["start"], r["stop"], r["body"], r["tokens"], r["heading"]) for r in rows],
        from_blobs([bytes(r["vec"]) for r in rows], dim),
        d["title"],
    )
