"""OpenAI wire format ⇄ internal types, as plain dicts: messages, requests, responses, chunks (the pieces
inside them: ``wire.openai_content``). Used by the API (parse, render) and by the OpenAI-compatible provider
(request out, response/chunks in). Lenient when reading upstream JSON, exact when writing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from tollhouse.config.models import ModelConfig
from tollhouse.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Choice,
    ChunkChoice,
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    Delta,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    TextChoice,
    Usage,
)
from tollhouse.wire.openai_content import (
    content_from_dict,
    content_to_dict,
    response_format_to_dict,
    tool_call_delta_from_dict,
    tool_call_delta_to_dict,
    tool_call_from_dict,
    tool_call_to_dict,
    tool_choice_to_dict,
    tool_to_dict,
)

_MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id"})


# ---- requests (gateway → upstream) -------------------------------------------------------------------


def chat_request_to_dict(req: ChatRequest, upstream_model: str, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = dict(req.extra)
    body["model"] = upstream_model
    body["messages"] = [message_to_dict(m) for m in req.messages]
    # A client that spoke max_completion_tokens (reasoning models reject max_tokens) keeps that name upstream.
    max_tokens = None if "max_completion_tokens" in body else req.max_tokens
    if max_tokens is None and req.max_tokens is not None and "max_completion_tokens" in body:
        body["max_completion_tokens"] = req.max_tokens
    _put_sampling(body, max_tokens, req.temperature, req.top_p, req.stop, req.seed, req.n, req.user)
    if req.tools is not None:
        body["tools"] = [tool_to_dict(t) for t in req.tools]
    if req.tool_choice is not None:
        body["tool_choice"] = tool_choice_to_dict(req.tool_choice)
    if req.response_format is not None:
        body["response_format"] = response_format_to_dict(req.response_format)
    if stream:
        body["stream"] = True
        # Always ask for usage so streamed requests are costed; the client only sees it if it asked.
        body["stream_options"] = {"include_usage": True}
    return body


def message_to_dict(m: Message) -> dict[str, Any]:
    content = m.content
    out: dict[str, Any] = {
        "role": m.role,
        "content": content if content is None or isinstance(content, str) else content_to_dict(content),
    }
    if m.name is not None:
        out["name"] = m.name
    if m.tool_calls is not None:
        out["tool_calls"] = [tool_call_to_dict(c) for c in m.tool_calls]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.extra:
        out.update(m.extra)
    return out


def completion_request_to_dict(
    req: CompletionRequest, upstream_model: str, *, stream: bool
) -> dict[str, Any]:
    body: dict[str, Any] = dict(req.extra)
    body["model"] = upstream_model
    body["prompt"] = req.prompt
    _put_sampling(body, req.max_tokens, req.temperature, req.top_p, req.stop, req.seed, req.n, req.user)
    if req.echo:
        body["echo"] = True
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def embedding_request_to_dict(req: EmbeddingRequest, upstream_model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": upstream_model, "input": req.input, "encoding_format": "float"}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    if req.user is not None:
        body["user"] = req.user
    return body


def _put_sampling(
    body: dict[str, Any],
    max_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    stop: list[str] | None,
    seed: int | None,
    n: int,
    user: str | None,
) -> None:
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature
    if top_p is not None:
        body["top_p"] = top_p
    if stop:
        body["stop"] = stop
    if seed is not None:
        body["seed"] = seed
    if n != 1:
        body["n"] = n
    if user is not None:
        body["user"] = user


# ---- upstream JSON → internal ------------------------------------------------------------------------


def usage_from_dict(d: dict[str, Any] | None) -> Usage | None:
    if not d:
        return None
    details = d.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        prompt_tokens=int(d.get("prompt_tokens") or 0),
        completion_tokens=int(d.get("completion_tokens") or 0),
        cached_tokens=int(cached) if cached is not None else None,
    )


def message_from_dict(d: dict[str, Any]) -> Message:
    extra = {k: v for k, v in d.items() if k not in _MESSAGE_KEYS and v is not None}
    calls = d.get("tool_calls")
    return Message(
        role=str(d.get("role") or "assistant"),
        content=content_from_dict(d.get("content")),
        name=d.get("name"),
        tool_calls=[tool_call_from_dict(c) for c in calls] if isinstance(calls, list) else None,
        tool_call_id=d.get("tool_call_id"),
        extra=extra or None,
    )


def chat_response_from_dict(d: dict[str, Any], public_model: str) -> ChatResponse:
    choices = [
        Choice(
            index=int(c.get("index", i)),
            message=message_from_dict(c.get("message") or {}),
            finish_reason=c.get("finish_reason"),
            logprobs=c.get("logprobs"),
        )
        for i, c in enumerate(d.get("choices") or [])
    ]
    return ChatResponse(
        id=str(d.get("id") or ""),
        model=public_model,
        choices=choices,
        usage=usage_from_dict(d.get("usage")) or Usage(),
        created=int(d.get("created") or 0),
        system_fingerprint=d.get("system_fingerprint"),
    )


def chat_chunk_from_dict(d: dict[str, Any], public_model: str) -> ChatChunk:
    choices = []
    for i, c in enumerate(d.get("choices") or []):
        delta = c.get("delta") or {}
        calls = delta.get("tool_calls")
        choices.append(
            ChunkChoice(
                index=int(c.get("index", i)),
                delta=Delta(
                    role=delta.get("role"),
                    content=delta.get("content"),
                    tool_calls=[tool_call_delta_from_dict(t) for t in calls]
                    if isinstance(calls, list)
                    else None,
                    refusal=delta.get("refusal"),
                ),
                finish_reason=c.get("finish_reason"),
                logprobs=c.get("logprobs"),
            )
        )
    return ChatChunk(
        id=str(d.get("id") or ""),
        model=public_model,
        choices=choices,
        usage=usage_from_dict(d.get("usage")),
        created=int(d.get("created") or 0),
        system_fingerprint=d.get("system_fingerprint"),
    )


def completion_response_from_dict(d: dict[str, Any], public_model: str) -> CompletionResponse:
    return CompletionResponse(
        id=str(d.get("id") or ""),
        model=public_model,
        choices=_text_choices(d),
        usage=usage_from_dict(d.get("usage")) or Usage(),
        created=int(d.get("created") or 0),
    )


def completion_chunk_from_dict(d: dict[str, Any], public_model: str) -> CompletionChunk:
    return CompletionChunk(
        id=str(d.get("id") or ""),
        model=public_model,
        choices=_text_choices(d),
        usage=usage_from_dict(d.get("usage")),
        created=int(d.get("created") or 0),
    )


def _text_choices(d: dict[str, Any]) -> list[TextChoice]:
    return [
        TextChoice(
            index=int(c.get("index", i)),
            text=str(c.get("text") or ""),
            finish_reason=c.get("finish_reason"),
            logprobs=c.get("logprobs"),
        )
        for i, c in enumerate(d.get("choices") or [])
    ]


def embedding_response_from_dict(d: dict[str, Any], public_model: str) -> EmbeddingResponse:
    rows = sorted(d.get("data") or [], key=lambda r: int(r.get("index", 0)))
    return EmbeddingResponse(
        model=public_model,
        data=[list(r.get("embedding") or []) for r in rows],
        usage=usage_from_dict(d.get("usage")) or Usage(),
    )


# ---- internal → client JSON --------------------------------------------------------------------------


def chat_response_to_dict(r: ChatResponse) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.id,
        "object": "chat.completion",
        "created": r.created,
        "model": r.model,
        "choices": [
            {
                "index": c.index,
                "message": _assistant_message(c.message),
                "logprobs": c.logprobs,
                "finish_reason": c.finish_reason,
            }
            for c in r.choices
        ],
        "usage": r.usage.to_dict(),
    }
    if r.system_fingerprint is not None:
        out["system_fingerprint"] = r.system_fingerprint
    return out


def _assistant_message(m: Message) -> dict[str, Any]:
    content = m.content
    out: dict[str, Any] = {
        "role": m.role,
        "content": content if content is None or isinstance(content, str) else content_to_dict(content),
    }
    if m.tool_calls:
        out["tool_calls"] = [tool_call_to_dict(c) for c in m.tool_calls]
    out["refusal"] = (m.extra or {}).get("refusal")
    return out


def chat_chunk_to_dict(c: ChatChunk) -> dict[str, Any]:
    choices = []
    for ch in c.choices:
        delta: dict[str, Any] = {}
        d = ch.delta
        if d.role is not None:
            delta["role"] = d.role
        if d.content is not None:
            delta["content"] = d.content
        if d.tool_calls is not None:
            delta["tool_calls"] = [tool_call_delta_to_dict(t) for t in d.tool_calls]
        if d.refusal is not None:
            delta["refusal"] = d.refusal
        choices.append(
            {"index": ch.index, "delta": delta, "logprobs": ch.logprobs, "finish_reason": ch.finish_reason}
        )
    out: dict[str, Any] = {
        "id": c.id,
        "object": "chat.completion.chunk",
        "created": c.created,
        "model": c.model,
        "choices": choices,
    }
    if c.system_fingerprint is not None:
        out["system_fingerprint"] = c.system_fingerprint
    if c.usage is not None:
        out["usage"] = c.usage.to_dict()
    return out


def completion_response_to_dict(r: CompletionResponse) -> dict[str, Any]:
    return {
        "id": r.id,
        "object": "text_completion",
        "created": r.created,
        "model": r.model,
        "choices": [
            {"index": c.index, "text": c.text, "logprobs": c.logprobs, "finish_reason": c.finish_reason}
            for c in r.choices
        ],
        "usage": r.usage.to_dict(),
    }


def completion_chunk_to_dict(c: CompletionChunk) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": c.id,
        "object": "text_completion",
        "created": c.created,
        "model": c.model,
        "choices": [
            {"index": ch.index, "text": ch.text, "logprobs": ch.logprobs, "finish_reason": ch.finish_reason}
            for ch in c.choices
        ],
    }
    if c.usage is not None:
        out["usage"] = c.usage.to_dict()
    return out


def embedding_response_to_dict(r: EmbeddingResponse) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(r.data)],
        "model": r.model,
        "usage": {"prompt_tokens": r.usage.prompt_tokens, "total_tokens": r.usage.prompt_tokens},
    }


class ModerationResult(Protocol):
    @property
    def flagged(self) -> bool: ...
    @property
    def categories(self) -> dict[str, bool]: ...
    @property
    def scores(self) -> dict[str, float]: ...


def moderation_to_dict(request_id: str, model: str, results: Sequence[ModerationResult]) -> dict[str, Any]:
    """OpenAI's ``CreateModerationResponse``: one result per input, in order."""
    return {
        "id": f"modr-{request_id or uuid.uuid4().hex}",
        "model": model,
        "results": [
            {
                "flagged": r.flagged,
                "categories": r.categories,
                "category_scores": r.scores,
                "category_applied_input_types": {c: ["text"] for c in r.categories},
            }
            for r in results
        ],
    }


def encode_base64(body: dict[str, Any]) -> None:
    """Rewrite float embeddings in place as base64 little-endian float32, as OpenAI does."""
    import base64
    import struct

    for row in body["data"]:
        vec = row["embedding"]
        row["embedding"] = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()


class Described(Protocol):
    """A deployment as ``/v1/models`` describes it (``providers.registry.Deployment``)."""

    @property
    def config(self) -> ModelConfig: ...


def model_to_dict(name: str, dep: Described) -> dict[str, Any]:
    cfg = dep.config
    return {
        "id": name,
        "object": "model",
        "created": 0,
        "owned_by": "tollhouse",
        "provider": cfg.provider,
        "context_window": cfg.context_window,
        "max_output_tokens": cfg.max_output_tokens,
    }


def models_to_dict(deployments: Sequence[Described]) -> dict[str, Any]:
    data = [model_to_dict(n, d) for d in deployments for n in [d.config.name, *d.config.aliases]]
    return {"object": "list", "data": data}
