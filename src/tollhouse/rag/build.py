"""The retrieval service from the `rag:` settings: the store of the configured backend and the embedders."""

from __future__ import annotations

from typing import Any

from tollhouse.config.rag import RagSettings
from tollhouse.rag.base import RagStore
from tollhouse.rag.embedding import Embedders, LocalEmbedder
from tollhouse.rag.service import Retrieval
from tollhouse.rag.stage import RetrievalStage
from tollhouse.stores.sql import dsn_from_env


def build_store(cfg: RagSettings) -> RagStore:
    if cfg.backend == "postgres":
        from tollhouse.rag.pg_store import PgRagStore

        return PgRagStore(
            dsn_from_env(cfg.postgres_dsn_env, "rag"), cfg.postgres_prefix, cfg.exact_search_limit
        )
    from tollhouse.rag.sqlite_store import SqliteRagStore

    return SqliteRagStore(cfg.sqlite_path, cfg.exact_search_limit)


def build_retrieval(cfg: RagSettings, registry: Any = None) -> Retrieval:
    return Retrieval(
        build_store(cfg),
        Embedders(LocalEmbedder(), registry),
        default_model=cfg.embedding_model,
        chunk_tokens=cfg.chunk_tokens,
        chunk_overlap=cfg.chunk_overlap,
        max_document_bytes=cfg.max_document_bytes,
    )


def retrieval_stage(cfg: RagSettings, rag: Retrieval, registry: Any) -> RetrievalStage:
    def window(model: str) -> int | None:
        try:
            return int(registry.get(model).config.context_window)
        except Exception:  # a routing group or router name: no one window
            return None

    return RetrievalStage(
        rag, max_k=cfg.max_k, budget_tokens=cfg.context_budget_tokens, context_window=window
    )
