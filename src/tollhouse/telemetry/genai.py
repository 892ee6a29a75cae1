"""OpenTelemetry GenAI semantic conventions, mapped from a ``RequestContext`` in one place. Pure: no
OpenTelemetry import, no I/O, so the mapping is unit-tested on plain values.

Request span (SERVER): HTTP attributes, the GenAI request/response/usage attributes and ``tollhouse.*``
extras. Provider span (CLIENT, one per provider call): ``gen_ai.provider.name`` (and the older
``gen_ai.system``), operation, upstream model and ``server.address``/``server.port``. Never any text.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from tollhouse.settings import ModelConfig
from tollhouse.types import RequestContext

AttrValue = str | bool | int | float | Sequence[str]
Attributes = dict[str, AttrValue]

# Our endpoint names → gen_ai.operation.name values.
OPERATIONS = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings"}
# Provider kinds → gen_ai.provider.name. "openai" means the OpenAI API shape; the real vendor behind an
# OpenAI-compatible endpoint is not knowable, so server.address says where the call went.
PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "llamacpp": "llama_cpp",
    "mock": "tollhouse.mock",
    "encoder": "tollhouse.encoder",
}


def operation(ctx: RequestContext) -> str:
    return OPERATIONS.get(ctx.endpoint, ctx.endpoint)


def span_name(ctx: RequestContext) -> str:
    """``{operation} {model}`` as the conventions ask, e.g. ``chat gpt-4o-mini``."""
    op = operation(ctx)
    return f"{op} {ctx.model_requested}" if ctx.model_requested else op


def request_attributes(ctx: RequestContext, status: int) -> Attributes:
    """Attributes of the request span, from the finished context."""
    out: Attributes = {
        "gen_ai.operation.name": operation(ctx),
        "http.response.status_code": status,
        "tollhouse.request_id": ctx.request_id,
        "tollhouse.ingress": ctx.ingress,
        "tollhouse.stream": ctx.stream,
        "tollhouse.overhead_ms": round(ctx.overhead_seconds() * 1000, 3),
    }
    if ctx.model_requested is not None:
        out["gen_ai.request.model"] = ctx.model_requested
    if ctx.model_served is not None:
        out["gen_ai.response.model"] = ctx.model_served
    if ctx.deployment is not None:
        out["tollhouse.deployment"] = ctx.deployment
    out.update(usage_attributes(ctx))
    if ctx.ttft_seconds is not None:
        out["tollhouse.ttft_ms"] = round(ctx.ttft_seconds * 1000, 3)
    if ctx.cache_status is not None:
        out["tollhouse.cache"] = ctx.cache_status
    if ctx.prompt_template is not None:
        out["tollhouse.prompt.id"] = ctx.prompt_template
        out["tollhouse.prompt.version"] = ctx.prompt_version or ""
    got = ctx.retrieval
    if got is not None:
        out["tollhouse.retrieval.collection"] = got.collection
        out["tollhouse.retrieval.chunks"] = len(got.texts)
        out["tollhouse.retrieval.tokens_added"] = got.tokens_added
    if ctx.principal.key_id is not None:
        out["tollhouse.key_id"] = ctx.principal.key_id
    if ctx.principal.team is not None:
        out["tollhouse.team"] = ctx.principal.team
    if ctx.error_class is not None:
        out["error.type"] = ctx.error_class
    elif status >= 500:
        out["error.type"] = str(status)
    return out


def usage_attributes(ctx: RequestContext) -> Attributes:
    """Token usage and finish reason (on the request span and the provider call that produced them)."""
    out: Attributes = {}
    if ctx.usage is not None:
        out["gen_ai.usage.input_tokens"] = ctx.usage.prompt_tokens
        out["gen_ai.usage.output_tokens"] = ctx.usage.completion_tokens
        if ctx.usage.cached_tokens is not None:
            out["gen_ai.usage.cache_read.input_tokens"] = ctx.usage.cached_tokens
    if ctx.finish_reason is not None:
        out["gen_ai.response.finish_reasons"] = (ctx.finish_reason,)
    return out


def provider_attributes(ctx: RequestContext, model: ModelConfig | None) -> Attributes:
    """Attributes of one provider call's span, known when the call starts."""
    out: Attributes = {"gen_ai.operation.name": operation(ctx)}
    if model is None:
        return out
    out["tollhouse.deployment"] = model.name
    name = PROVIDER_NAMES.get(model.provider, model.provider)
    out["gen_ai.provider.name"] = name
    out["gen_ai.system"] = name  # the attribute's older name, still read by most backends
    out["gen_ai.request.model"] = model.upstream_model
    api_base = getattr(model, "api_base", None)
    if isinstance(api_base, str):
        parts = urlsplit(api_base)
        if parts.hostname:
            out["server.address"] = parts.hostname
            out["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
    return out
