"""Guardrail seam: input checks before any provider sees a request, output checks on everything returned.

One protocol for every operation: the operation (``operations.py``) turns its request into a ``GuardInput``
and its answers into messages, so the chain never sees a wire shape. ``NoGuards`` lets everything through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from tollhouse.types import ChatChunk, GuardInput, Message, RequestContext


class GuardChain(Protocol):
    async def check_input(self, ctx: RequestContext, inp: GuardInput) -> list[Message]:
        """The messages to send (possibly redacted), or raise ``GuardrailBlocked``. A conversation input
        (chat, legacy completions) also prepares the output checks: the PII mapping to restore, the response
        schema to validate. Inputs that are not a conversation (embeddings: ``inp.items`` set) get limits and
        PII only, and PII can only be refused or anonymised (no answer comes back to restore it into)."""
        ...

    async def check_output(self, ctx: RequestContext, answers: list[Message]) -> list[Message]:
        """The answers (one per choice) to deliver, possibly redacted / restored; raise ``GuardrailBlocked``
        or ``ResponseSchemaMismatch``."""
        ...

    def guard_stream(self, ctx: RequestContext, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk]:
        """Wrap a stream so every chunk is checked before the client sees it. A block ends it with
        ``finish_reason: content_filter``; a streamed ``json_schema`` answer that fails raises
        ``ResponseSchemaMismatch`` (rendered as an error event). Does not close ``chunks``."""
        ...

    def close(self) -> None:
        """Release models and worker threads (at shutdown)."""
        ...


class NoGuards:
    async def check_input(self, ctx: RequestContext, inp: GuardInput) -> list[Message]:
        return inp.messages

    async def check_output(self, ctx: RequestContext, answers: list[Message]) -> list[Message]:
        return answers

    def guard_stream(self, ctx: RequestContext, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk]:
        return chunks

    def close(self) -> None:
        return None
