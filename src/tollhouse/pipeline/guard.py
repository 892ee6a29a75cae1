"""Guardrail stage: input checks before any provider sees a request, output checks on everything returned.

The pass-through ``NoGuards`` lets everything through unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Protocol

from tollhouse.types import ChatChunk, ChatRequest, ChatResponse, Message, RequestContext


class GuardChain(Protocol):
    async def check_input(self, ctx: RequestContext, req: ChatRequest) -> ChatRequest:
        """Return the request to send (possibly redacted) or raise ``InvalidRequest`` (guardrail_blocked)."""
        ...

    async def check_output(self, ctx: RequestContext, resp: ChatResponse) -> ChatResponse:
        """Return the response to deliver (possibly redacted / restored) or raise."""
        ...

    def guard_stream(self, ctx: RequestContext, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk]:
        """Wrap a stream so every chunk is checked before the client sees it."""
        ...


class NoGuards:
    async def check_input(self, ctx: RequestContext, req: ChatRequest) -> ChatRequest:
        return req

    async def check_output(self, ctx: RequestContext, resp: ChatResponse) -> ChatResponse:
        return resp

    def guard_stream(self, ctx: RequestContext, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk]:
        return chunks


def repair_request(req: ChatRequest, bad: ChatResponse, error: str) -> ChatRequest:
    """The one repair retry after an answer failed the requested ``json_schema``: the same request plus the
    model's answer and the validation error."""
    answer = bad.choices[0].message.text() if bad.choices else ""
    note = f"{error}\nReply again with only JSON that matches the schema."
    return replace(req, messages=[*req.messages, Message("assistant", answer), Message("user", note)])
