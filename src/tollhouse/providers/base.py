"""The Provider protocol: how the gateway talks to one model deployment, whatever serves it.

A provider instance serves exactly one deployment (one upstream model at one address) and owns the
resources for it (a pooled HTTP client, a loaded model). It is built in the app lifespan and closed by
``aclose``. Providers raise only ``Upstream*`` errors from ``tollhouse.errors`` (plus ``Overloaded`` when a
local queue is full and ``InvalidRequest`` / ``ContextWindowExceeded`` for requests they cannot serve).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tollhouse.types import (
    Capabilities,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
)


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    detail: str = ""
    latency_ms: float = 0.0


@runtime_checkable
class Provider(Protocol):
    """One deployment. ``req.model`` is the *public* name; the provider knows its upstream id.

    Streams: ``stream``/``stream_text`` are async generators. The consumer may stop iterating at any
    point (client gone); closing the generator must cancel the upstream request or stop local generation.
    The final chunk of a stream carries ``usage`` whenever the provider can know it.
    """

    name: str
    capabilities: Capabilities  # ``types.Capabilities``: what the gateway may ask of it

    async def complete(self, req: ChatRequest) -> ChatResponse:
        """Non-streaming chat completion."""
        ...

    def stream(self, req: ChatRequest) -> AsyncIterator[ChatChunk]:
        """Streaming chat completion."""
        ...

    async def complete_text(self, req: CompletionRequest) -> CompletionResponse:
        """Legacy text completion."""
        ...

    def stream_text(self, req: CompletionRequest) -> AsyncIterator[CompletionChunk]:
        """Streaming legacy text completion."""
        ...

    async def embed(self, req: EmbeddingRequest) -> EmbeddingResponse:
        """Embeddings for every input, in order."""
        ...

    async def health(self) -> Health:
        """Cheap readiness probe (model loaded / upstream reachable)."""
        ...

    async def aclose(self) -> None:
        """Release every resource. Idempotent."""
        ...
