"""The `rag:` section: collections of documents, hybrid search and retrieval on chat requests
(docs/RETRIEVAL.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tollhouse.config.base import Strict


class RagSettings(Strict):
    """Retrieval-augmented generation."""

    enabled: bool = Field(True, description="Serve `/v1/collections` and `retrieval` on chat requests.")
    backend: Literal["sqlite", "postgres"] = Field(
        "sqlite", description="`sqlite` (embedded, one file) or `postgres` (shared by every replica)."
    )
    sqlite_path: str = Field("tollhouse-rag.db", description="SQLite file (`backend: sqlite`).")
    postgres_dsn_env: str | None = Field(
        None, description="Name of the environment variable holding the PostgreSQL DSN (`backend: postgres`)."
    )
    postgres_prefix: str = Field(
        "rag", pattern=r"^[a-z][a-z0-9_]{0,30}$", description="Prefix of the PostgreSQL table names."
    )
    postgres_vectors: Literal["auto", "pgvector", "fallback"] = Field(
        "auto",
        description="Dense search on PostgreSQL: `pgvector` (in SQL, an HNSW index per collection; start "
        "fails without the extension), `fallback` (vectors searched in numpy in each gateway process) or "
        "`auto` (pgvector when the server has it or lets the gateway create it).",
    )
    embedding_model: str = Field(
        "local-embed",
        description="Embedding model of new collections: `local-embed` (embedded) or any deployment that "
        "serves embeddings.",
    )
    encoder_threads: int = Field(
        2,
        ge=1,
        le=16,
        description="Worker threads of `local-embed` for ingest (one ONNX session each; a query uses one).",
    )
    chunk_tokens: int = Field(160, ge=16, le=2000, description="Largest chunk, in word/punctuation tokens.")
    chunk_overlap: int = Field(32, ge=0, le=500, description="Tokens a chunk repeats from the previous one.")
    max_document_bytes: int = Field(20_000_000, ge=1, description="Largest document accepted.")
    exact_search_limit: int = Field(
        20_000, ge=1, description="Up to this many vectors a collection is searched exactly; beyond, by HNSW."
    )
    max_k: int = Field(20, ge=1, le=100, description="Most chunks a chat request may retrieve.")
    context_budget_tokens: int = Field(
        2000, ge=1, description="Most tokens retrieval may add to a chat request's prompt."
    )
