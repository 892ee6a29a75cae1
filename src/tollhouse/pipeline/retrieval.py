"""Retrieval seam: chunks of a tenant's collection for a chat request that names one (``rag/stage.py``).
``NoRetrieval`` refuses a request that asks for retrieval with a 400 (retrieval is off)."""

from __future__ import annotations

from typing import Any, Protocol

from tollhouse.errors import InvalidRequest
from tollhouse.types import RequestContext, Retrieved


class Retriever(Protocol):
    async def retrieve(self, ctx: RequestContext, spec: Any, query: str, model: str) -> Retrieved:
        """The chunks ``spec`` asks for (``{"collection", "k", "filters", "mode", "max_tokens"}``), within the
        context budget of ``model``. Raises ``InvalidRequest`` (bad spec), ``NotFound`` (no such collection
        for the caller's tenant), ``StoreUnavailable``."""
        ...


class NoRetrieval:
    async def retrieve(self, ctx: RequestContext, spec: Any, query: str, model: str) -> Retrieved:
        raise InvalidRequest("Retrieval is not enabled on this gateway (rag.enabled).", param="retrieval")
