"""The retrieval stores' vocabulary and their two Protocols.

``DocumentStore`` keeps collections, documents and chunks per tenant and answers BM25 (full-text) queries;
``VectorIndex`` keeps one vector per chunk and answers nearest-neighbour queries. Each backend (SQLite,
PostgreSQL) implements both in one class over one database, so a document's chunks and vectors are written
and deleted in one transaction. Every method takes the tenant: a collection of another tenant does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
Filters = dict[str, Any]  # metadata field → value, or {"$in": [values]}
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


@dataclass(frozen=True, slots=True)
class Collection:
    tenant: str
    name: str
    embedding_model: str
    dim: int
    created: float
    documents: int = 0
    chunks: int = 0
    description: str = ""


@dataclass(frozen=True, slots=True)
class ChunkIn:
    index: int
    start: int
    end: int
    text: str
    tokens: int
    heading: str | None = None


@dataclass(frozen=True, slots=True)
class DocumentIn:
    id: str
    sha256: str
    metadata: dict[str, Any]
    chunks: list[ChunkIn]
    vectors: F32  # one row per chunk, unit length
    title: str | None = None


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    id: str
    sha256: str
    metadata: dict[str, Any]
    chunks: int
    created: float
    title: str | None = None


@dataclass(slots=True)
class ChunkOut:
    id: int  # the store's chunk key
    document_id: str
    index: int
    start: int
    end: int
    text: str
    tokens: int
    heading: str | None
    metadata: dict[str, Any] = field(default_factory=dict)


class DocumentStore(Protocol):
    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def create_collection(self, c: Collection) -> Collection:
        """Create; raise ``Conflict`` when the tenant already has a collection of that name."""
        ...

    async def get_collection(self, tenant: str, name: str) -> Collection | None: ...

    async def list_collections(self, tenant: str) -> list[Collection]: ...

    async def delete_collection(self, tenant: str, name: str) -> bool:
        """Delete the collection, its documents, chunks and vectors; False when there was none."""
        ...

    async def set_embedding_model(self, tenant: str, name: str, model: str, dim: int, vectors: F32) -> None:
        """Replace every chunk's vector (rows in chunk-id order, as ``chunk_texts`` lists them)."""
        ...

    async def chunk_texts(self, tenant: str, name: str) -> list[tuple[int, str]]:
        """(chunk id, text) of every chunk of the collection, in chunk-id order."""
        ...

    async def document(self, tenant: str, name: str, doc_id: str) -> DocumentInfo | None: ...

    async def list_documents(
        self, tenant: str, name: str, limit: int, after: str | None
    ) -> list[DocumentInfo]: ...

    async def put_document(self, tenant: str, name: str, doc: DocumentIn) -> bool:
        """Insert or replace the document (its old chunks and vectors go) in one transaction. False when
        the stored document has the same content hash and metadata (nothing written)."""
        ...

    async def delete_document(self, tenant: str, name: str, doc_id: str) -> bool: ...

    async def export_documents(self, tenant: str, name: str) -> list[DocumentIn]:
        """Every document with its chunks and vectors, as ``put_document`` takes them (copying a collection
        to another store without embedding it again)."""
        ...

    async def keyword_search(
        self, tenant: str, name: str, query: str, k: int, filters: Filters | None
    ) -> list[tuple[int, float]]:
        """BM25 (or the backend's full-text rank): (chunk id, score) best first; higher is better."""
        ...

    async def chunks(self, tenant: str, name: str, ids: list[int]) -> list[ChunkOut]:
        """The chunks with these ids (other tenants' / collections' ids are not returned)."""
        ...


class VectorIndex(Protocol):
    async def vector_search(
        self, tenant: str, name: str, vector: F32, k: int, filters: Filters | None
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) best first."""
        ...


class RagStore(DocumentStore, VectorIndex, Protocol):
    """What one backend provides."""


def match(meta: dict[str, Any], filters: Filters | None) -> bool:
    """Whether document metadata satisfies the filters (equality, or ``{"$in": [...]}``)."""
    if not filters:
        return True
    for key, want in filters.items():
        have = meta.get(key)
        if isinstance(want, dict):
            if have not in want["$in"]:
                return False
        elif have != want:
            return False
    return True
