"""Response shapes for the OpenAPI document (never used to serve: routes render their own JSON). Each has an
example taken from a real answer, so `/docs` and `/redoc` show what a caller gets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def _example(value: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [value]})


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


class ChatMessageOut(BaseModel):
    role: Literal["assistant"]
    content: str | None
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChatChoice(BaseModel):
    index: int
    message: ChatMessageOut
    logprobs: dict[str, Any] | None = None
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"]


class ToolUsed(BaseModel):
    """One gateway tool call (docs/TOOLS.md)."""

    name: str
    arguments: str = Field(description="The arguments the model sent (JSON text).")
    status: str = Field(description="`ok`, `skipped`, or the error code the model was shown (`timeout`, …).")
    duration_ms: float
    result: str = Field(description="What the model saw, truncated (`tools.used_result_chars`).")
    round: int = Field(description="The model answer (1-based) that asked for the call.")


class ChatCompletion(BaseModel):
    """`chat.completion` (JSON). A stream sends `chat.completion.chunk` events instead."""

    model_config = _example(
        {
            "id": "chatcmpl-e390c56cb67f40ba8486cf69de9ce583",
            "object": "chat.completion",
            "created": 1764806400,
            "model": "local",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello! How can I help?", "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
        }
    )
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    tools_used: list[ToolUsed] | None = Field(
        None, description="Extension: the gateway tools run for this answer (only when the request used any)."
    )


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: dict[str, Any] | None = None
    finish_reason: Literal["stop", "length", "content_filter"]


class Completion(BaseModel):
    model_config = _example(
        {
            "id": "cmpl-c11562795e7c4518a0ba80d1600f1745",
            "object": "text_completion",
            "created": 1764806400,
            "model": "local",
            "choices": [{"index": 0, "text": " the sea.", "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        }
    )
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class Embedding(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 of little-endian float32.")


class EmbeddingList(BaseModel):
    model_config = _example(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [-0.0103, 0.0133, -0.0396]}],
            "model": "local-embed",
            "usage": {"prompt_tokens": 2, "total_tokens": 2},
        }
    )
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: Usage


class Model(BaseModel):
    model_config = _example(
        {
            "id": "local",
            "object": "model",
            "created": 0,
            "owned_by": "tollhouse",
            "provider": "llamacpp",
            "context_window": 8192,
            "max_output_tokens": 4096,
        }
    )
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    provider: str | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None


class ModelList(BaseModel):
    model_config = _example(
        {
            "object": "list",
            "data": [
                {
                    "id": "local",
                    "object": "model",
                    "created": 0,
                    "owned_by": "tollhouse",
                    "provider": "llamacpp",
                },
                {"id": "local-embed", "object": "model", "created": 0, "owned_by": "tollhouse"},
            ],
        }
    )
    object: Literal["list"]
    data: list[Model]


class ApiKeyOut(BaseModel):
    """A key as the admin API shows it. `key` (the secret) only in the answers to create and rotate."""

    model_config = _example(
        {
            "id": "key_ea3b6ff2027d454f",
            "prefix": "th-poD9dxzS",
            "name": "web",
            "created_at": 1764806400.0,
            "user": None,
            "team": "search",
            "models": ["local"],
            "rpm": 60,
            "tpm": None,
            "model_limits": {},
            "daily_usd": 5.0,
            "monthly_usd": None,
            "expires_at": None,
            "last_used_at": None,
            "revoked_at": None,
            "key": "th-poD9dxzSGfDa8p9quW3-9LK7kLJP46iIQQ02HVVZSKI",
        }
    )
    id: str
    prefix: str
    name: str
    created_at: float
    user: str | None
    team: str | None
    models: list[str] | None
    rpm: int | None
    tpm: int | None
    model_limits: dict[str, Any]
    daily_usd: float | None
    monthly_usd: float | None
    expires_at: float | None
    last_used_at: float | None
    revoked_at: float | None
    key: str | None = Field(None, description="The secret: shown once, by create and rotate.")


class ApiKeyList(BaseModel):
    model_config = _example(
        {
            "data": [
                {
                    "id": "key_ea3b6ff2027d454f",
                    "prefix": "th-poD9dxzS",
                    "name": "web",
                    "created_at": 1764806400.0,
                    "user": None,
                    "team": "search",
                    "models": ["local"],
                    "rpm": 60,
                    "tpm": None,
                    "model_limits": {},
                    "daily_usd": 5.0,
                    "monthly_usd": None,
                    "expires_at": None,
                    "last_used_at": 1764806500.0,
                    "revoked_at": None,
                }
            ]
        }
    )
    data: list[ApiKeyOut]


class UsageTotals(BaseModel):
    requests: int
    errors: int
    cache_hits: int
    semantic_hits: int
    cache_misses: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    saved_usd: float
    unknown_cost: int


class UsageReport(BaseModel):
    """Ledger aggregates; each row has the `group_by` field (e.g. `key_id`) and the totals' fields."""

    model_config = _example(
        {
            "group_by": "model",
            "since": 1762214400.0,
            "until": 1764806400.0,
            "data": [
                {
                    "model": "local",
                    "requests": 3,
                    "errors": 0,
                    "cache_hits": 1,
                    "semantic_hits": 0,
                    "cache_misses": 2,
                    "prompt_tokens": 36,
                    "completion_tokens": 21,
                    "cost_usd": 0.0,
                    "saved_usd": 0.0,
                    "unknown_cost": 0,
                }
            ],
            "totals": {
                "requests": 3,
                "errors": 0,
                "cache_hits": 1,
                "semantic_hits": 0,
                "cache_misses": 2,
                "prompt_tokens": 36,
                "completion_tokens": 21,
                "cost_usd": 0.0,
                "saved_usd": 0.0,
                "unknown_cost": 0,
            },
        }
    )
    group_by: str
    since: float
    until: float
    data: list[dict[str, Any]]
    totals: UsageTotals


class TopUser(BaseModel):
    user: str
    cost_usd: float
    requests: int


class CostReport(BaseModel):
    model_config = _example(
        {
            "since": 1762214400.0,
            "until": 1764806400.0,
            "total_requests": 1200,
            "total_cost_usd": 0.419,
            "total_prompt_tokens": 540000,
            "total_completion_tokens": 120000,
            "average_cost_per_request_usd": 0.00034917,
            "cache_hit_rate": 0.18,
            "cache_hits": 216,
            "cache_saved_usd": 0.07,
            "errors": 4,
            "unknown_cost_requests": 0,
            "cost_by_model": {"gpt-4o-mini": 0.419, "local": 0.0},
            "top_users": [{"user": "alice", "cost_usd": 0.2, "requests": 500}],
        }
    )
    since: float
    until: float
    total_requests: int
    total_cost_usd: float
    total_prompt_tokens: int
    total_completion_tokens: int
    average_cost_per_request_usd: float
    cache_hit_rate: float
    cache_hits: int
    cache_saved_usd: float
    errors: int
    unknown_cost_requests: int
    cost_by_model: dict[str, float]
    top_users: list[TopUser]


class CacheStats(BaseModel):
    """Top-level figures cover every replica (from the ledger); `process` is this process only."""

    model_config = _example(
        {
            "process": {"hits": 4, "misses": 10, "entries": 10, "mode": "exact", "backend": "redis"},
            "ledger": {"hits": 9, "semantic_hits": 0, "misses": 20, "hit_rate": 0.31, "saved_usd": 0.0012},
            "entries": 10,
            "semantic_entries": 0,
            "hits": 9,
            "semantic_hits": 0,
            "misses": 20,
            "hit_rate": 0.31,
            "saved_usd": 0.0012,
        }
    )
    process: dict[str, Any]
    ledger: dict[str, Any] | None
    entries: int
    semantic_entries: int
    hits: int
    semantic_hits: int
    misses: int
    hit_rate: float
    saved_usd: float


class Invalidated(BaseModel):
    model_config = _example({"removed": 12})
    removed: int


class FeedbackAccepted(BaseModel):
    model_config = _example(
        {"object": "feedback", "request_id": "1d86be3b9e40437c9b17a502106c6d39", "status": "accepted"}
    )
    object: Literal["feedback"]
    request_id: str
    status: Literal["accepted"]


class Live(BaseModel):
    model_config = _example({"status": "ok"})
    status: Literal["ok"]


class Ready(BaseModel):
    """Each check: a deployment's probe (with its circuit) or a store (Redis, database) with its latency."""

    model_config = _example(
        {
            "status": "ok",
            "checks": {
                "local": {"status": "ok", "latency_ms": 0.06, "detail": "loaded", "required": True},
                "redis": {"status": "ok", "latency_ms": 0.4, "detail": "PING", "required": True},
                "database": {"status": "ok", "latency_ms": 1.2, "detail": "SELECT 1", "required": True},
            },
        }
    )
    status: Literal["ok", "degraded", "draining"]
    checks: dict[str, dict[str, Any]]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorEnvelope(BaseModel):
    """Every error, on every route: OpenAI's envelope."""

    model_config = _example(
        {
            "error": {
                "message": "Incorrect API key provided.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
    )
    error: ErrorBody
