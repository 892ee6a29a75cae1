"""Schema-only twins of the Anthropic routes, so /docs shows their typed bodies. The served routes read raw
bodies (ADR 0002); these signatures are never served — they only feed ``openapi()``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tollhouse.api.anthropic.protocol import CountTokensRequest, MessagesRequest
from tollhouse.api.prompts_schema import MessageOut, TokenCount

docs_router = APIRouter(tags=["Anthropic-compatible"])


@docs_router.post(
    "/v1/messages",
    summary="Create a message (Anthropic's Messages API)",
    description="A `message` object, or Anthropic's named Server-Sent Events when `stream` is true. Errors "
    'use Anthropic\'s envelope `{"type": "error", "error": {"type", "message"}}`. `x-api-key` or '
    "`Authorization: Bearer`. Tollhouse's `retrieval` field "
    '(`{"collection", "k"?, "filters"?, "mode"?, "max_tokens"?}`) answers from the caller\'s collection and '
    "adds `citations` to the message (to the closing `message_delta` event of a stream).",
    responses={200: {"model": MessageOut}},
)
def _messages(body: MessagesRequest) -> dict[str, Any]:  # pragma: no cover - schema only
    raise NotImplementedError


@docs_router.post(
    "/v1/messages/count_tokens",
    summary="Count a message request's input tokens",
    responses={200: {"model": TokenCount}},
)
def _count_tokens(body: CountTokensRequest) -> dict[str, Any]:  # pragma: no cover - schema only
    raise NotImplementedError
