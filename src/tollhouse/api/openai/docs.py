"""Schema-only twins of the OpenAI routes, so /docs shows typed bodies and examples.

The served routes read raw bodies (one pydantic-core parse, no FastAPI body machinery); these signatures
are never served — they only feed ``openapi()``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tollhouse.api.openai.protocol import (
    ChatCompletionRequest,
    CompletionCreateRequest,
    EmbeddingCreateRequest,
    ModerationCreateRequest,
)
from tollhouse.api.prompts_schema import ModerationOut
from tollhouse.api.schema_models import ChatCompletion, Completion, EmbeddingList, Model, ModelList

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request (a wrong type, a number out of range …); `error.param` names it"},
    401: {"description": "Missing or invalid API key (`WWW-Authenticate: Bearer`)"},
    404: {"description": "Unknown model, or one the key may not use"},
    413: {"description": "Body too large"},
    422: {"description": "An output guardrail withheld the model's answer (`type: content_filter`)"},
    429: {"description": "Rate limited (Retry-After)"},
    502: {"description": "Upstream failed"},
    503: {"description": "Overloaded (Retry-After)"},
    504: {"description": "Upstream timed out"},
}

docs_router = APIRouter(tags=["OpenAI-compatible"], responses=_ERRORS)
_SSE = {"text/event-stream": {"example": 'data: {"object":"chat.completion.chunk",...}\n\ndata: [DONE]\n\n'}}


@docs_router.post(
    "/v1/chat/completions",
    summary="Create a chat completion",
    description="JSON, or Server-Sent Events of `chat.completion.chunk` when `stream` is true, ending with "
    "`data: [DONE]`. With `stream_options.include_usage` a final chunk carries `usage`.",
    responses={200: {"model": ChatCompletion, "content": _SSE}},
)
def _chat(body: ChatCompletionRequest) -> dict[str, Any]:  # pragma: no cover - schema only
    raise NotImplementedError


@docs_router.post(
    "/v1/completions",
    summary="Create a text completion (legacy)",
    responses={200: {"model": Completion, "content": _SSE}},
)
def _completions(body: CompletionCreateRequest) -> dict[str, Any]:  # pragma: no cover - schema only
    raise NotImplementedError


@docs_router.post("/v1/embeddings", summary="Create embeddings", responses={200: {"model": EmbeddingList}})
def _embeddings(body: EmbeddingCreateRequest) -> dict[str, Any]:  # pragma: no cover - schema only
    raise NotImplementedError


@docs_router.get(
    "/v1/models",
    summary="List the models, aliases and groups the key may use",
    responses={200: {"model": ModelList}},
)
def _models() -> dict[str, Any]:  # pragma: no cover - schema only
    raise NotImplementedError


@docs_router.get(
    "/v1/models/{model_id}",
    summary="One model (404 when the key may not use it)",
    responses={200: {"model": Model}},
)
def _model(model_id: str) -> dict[str, Any]:  # pragma: no cover - schema only
    raise NotImplementedError


@docs_router.post(
    "/v1/moderations",
    summary="Classify text as unsafe (OpenAI's moderation schema, answered by the gateway's own classifier)",
    responses={200: {"model": ModerationOut}},
)
def _moderations(body: ModerationCreateRequest) -> dict[str, Any]:  # pragma: no cover - schema only
    raise NotImplementedError
