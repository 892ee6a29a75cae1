"""Guardrail stage: input checks before any provider sees a request, output checks on everything returned.

One protocol for every endpoint: chat, legacy completions (prompt in, text out) and embeddings (input
only). The pass-through ``NoGuards`` lets everything through unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from tollhouse.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    RequestContext,
)


class GuardChain(Protocol):
    async def check_input(self, ctx: RequestContext, req: ChatRequest) -> ChatRequest:
        """Return the request to send (possibly redacted) or raise ``InvalidRequest`` (guardrail_blocked)."""
        ...

    async def check_output(self, ctx: RequestContext, resp: ChatResponse) -> ChatResponse:
        """Return the response to deliver (possibly redacted / restored) or raise."""
        ...

    def guard_stream(self, ctx: RequestContext, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk]:
        """Wrap a stream so every chunk is checked before the client sees it. A block ends it with
        ``finish_reason: content_filter``; a streamed ``json_schema`` answer that fails raises
        ``ResponseSchemaMismatch`` (rendered as an error event). Does not close ``chunks``."""
        ...

    async def check_completion_input(self, ctx: RequestContext, req: CompletionRequest) -> CompletionRequest:
        """``check_input`` for a legacy completion: the prompt is checked as one user message."""
        ...

    async def check_completion_output(
        self, ctx: RequestContext, resp: CompletionResponse
    ) -> CompletionResponse:
        """``check_output`` for a legacy completion's choices."""
        ...

    def guard_completion_stream(
        self, ctx: RequestContext, chunks: AsyncIterator[CompletionChunk]
    ) -> AsyncIterator[CompletionChunk]:
        """``guard_stream`` for a legacy completion stream. Does not close ``chunks``."""
        ...

    async def check_embedding_input(self, ctx: RequestContext, req: EmbeddingRequest) -> EmbeddingRequest:
        """Limits and PII on the inputs (PII can only be refused or anonymised); raise to refuse."""
        ...


class NoGuards:
    async def check_input(self, ctx: RequestContext, req: ChatRequest) -> ChatRequest:
        return req

    async def check_output(self, ctx: RequestContext, resp: ChatResponse) -> ChatResponse:
        return resp

    def guard_stream(self, ctx: RequestContext, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk]:
        return chunks

    async def check_completion_input(self, ctx: RequestContext, req: CompletionRequest) -> CompletionRequest:
        return req

    async def check_completion_output(
        self, ctx: RequestContext, resp: CompletionResponse
    ) -> CompletionResponse:
        return resp

    def guard_completion_stream(
        self, ctx: RequestContext, chunks: AsyncIterator[CompletionChunk]
    ) -> AsyncIterator[CompletionChunk]:
        return chunks

    async def check_embedding_input(self, ctx: RequestContext, req: EmbeddingRequest) -> EmbeddingRequest:
        return req
