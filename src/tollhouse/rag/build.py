"""The retrieval service and its request-path stage from the `rag:` settings (the store comes from
``stores.build.rag_store``, the one place that reads a backend setting)."""

from __future__ import annotations

from typing import Any

from tollhouse.config.rag import RagSettings
from tollhouse.rag.embedding import Embedders, LocalEmbedder
from tollhouse.rag.service import Retrieval
from tollhouse.rag.stage import RetrievalStage
from tollhouse.stores.build import rag_store


def build_retrieval(cfg: RagSettings, registry: Any = None, ledger: Any = None) -> Retrieval:
    """``ledger``: where calls to embedding deployments are recorded (the gateway's; none in the CLI)."""
    return Retrieval(
        rag_store(cfg),
        Embedders(LocalEmbedder(threads=cfg.encoder_threads), registry, ledger),
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
