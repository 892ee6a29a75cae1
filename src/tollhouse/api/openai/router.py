"""OpenAI routes: parse, call the gateway, render. Thin on purpose.

The schema shown at /docs lives in ``docs``.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.responses import Response

from tollhouse.api.cache_control import cache_control
from tollhouse.api.deps import credential, get_gateway, get_runtime, new_context, parse_body
from tollhouse.api.disconnect import gone, unless_disconnected
from tollhouse.api.openai.protocol import (
    ChatCompletionRequest,
    CompletionCreateRequest,
    EmbeddingCreateRequest,
    ModerationCreateRequest,
    Wire,
)
from tollhouse.api.prompt_ref import HEADER as PROMPT_HEADER
from tollhouse.api.render import cost_trailer, json_response, sse_response, with_citations
from tollhouse.errors import ModelNotFound
from tollhouse.guardrails.moderator import MODEL_NAME
from tollhouse.operations import CHAT, COMPLETIONS, EMBEDDINGS
from tollhouse.tools.report import tools_used_json
from tollhouse.types import Estimate
from tollhouse.wire import openai as wire

router = APIRouter()
log = logging.getLogger("tollhouse.api")


def _note_ignored(body: Wire) -> None:
    ignored = body.ignored_fields()
    if ignored:
        log.info("ignored unknown request fields", extra={"fields": ignored})


# Each route records a request refused before the pipeline did (bad key, malformed body, unknown
# model): every request gets its ledger record (``Gateway.refused`` is a no-op once it has one).
# The gateway's work runs ``unless_disconnected``: a client that leaves cancels it (None: answer ``gone``).


@router.post("/v1/chat/completions", include_in_schema=False)
async def chat_completions(request: Request) -> Response:
    gw = get_gateway(request)
    ctx = new_context(request, "chat")
    try:
        await gw.authenticate(ctx, credential(request))
        # Unknown fields travel as ``vendor``: the deployment passes on what it allows, logs the rest.
        body = await parse_body(request, ChatCompletionRequest)
        req = body.to_internal(request.headers.get(PROMPT_HEADER))
        req.cache = cache_control(request.headers, body.cache)
        if req.stream:
            chunks = await unless_disconnected(request, ctx, gw.handle_stream(ctx, CHAT, req))
            if chunks is None:
                return gone()
            trailer = cost_trailer(ctx)
            if ctx.retrieval is not None:
                chunks, trailer = with_citations(chunks, ctx)
            return sse_response(chunks, wire.chat_chunk_to_dict, ctx.request_id, trailer=trailer, ctx=ctx)
        resp = await unless_disconnected(request, ctx, gw.handle(ctx, CHAT, req))
        if resp is None:
            return gone()
        out = wire.chat_response_to_dict(resp)
        if ctx.tools_used is not None:  # the extension field of gateway tools (docs/TOOLS.md)
            out["tools_used"] = tools_used_json(ctx)
        if ctx.retrieval is not None:
            out["citations"] = ctx.retrieval.citations  # extension field: the chunks behind the markers
        return json_response(out)
    except Exception as exc:
        gw.refused(ctx, exc)
        raise


@router.post("/v1/completions", include_in_schema=False)
async def completions(request: Request) -> Response:
    gw = get_gateway(request)
    ctx = new_context(request, "completions")
    try:
        await gw.authenticate(ctx, credential(request))
        body = await parse_body(request, CompletionCreateRequest)
        req = body.to_internal()
        if req.stream:
            chunks = await unless_disconnected(request, ctx, gw.handle_stream(ctx, COMPLETIONS, req))
            if chunks is None:
                return gone()
            return sse_response(
                chunks, wire.completion_chunk_to_dict, ctx.request_id, trailer=cost_trailer(ctx), ctx=ctx
            )
        resp = await unless_disconnected(request, ctx, gw.handle(ctx, COMPLETIONS, req))
        return gone() if resp is None else json_response(wire.completion_response_to_dict(resp))
    except Exception as exc:
        gw.refused(ctx, exc)
        raise


@router.post("/v1/embeddings", include_in_schema=False)
async def embeddings(request: Request) -> Response:
    gw = get_gateway(request)
    ctx = new_context(request, "embeddings")
    try:
        await gw.authenticate(ctx, credential(request))
        body = await parse_body(request, EmbeddingCreateRequest)
        _note_ignored(body)
        resp = await unless_disconnected(request, ctx, gw.handle(ctx, EMBEDDINGS, body.to_internal()))
    except Exception as exc:
        gw.refused(ctx, exc)
        raise
    if resp is None:
        return gone()
    out = wire.embedding_response_to_dict(resp)
    if body.encoding_format == "base64":
        wire.encode_base64(out)
    return json_response(out)


@router.post("/v1/moderations", include_in_schema=False)
async def moderations(request: Request) -> Response:
    """OpenAI's moderation endpoint, answered by the gateway's own classifier (no upstream call)."""
    gw = get_gateway(request)
    ctx = new_context(request, "moderations")
    try:
        await gw.authenticate(ctx, credential(request))
        body = await parse_body(request, ModerationCreateRequest)
        _note_ignored(body)
        texts = body.texts()
        moderator = get_runtime(request).moderator
        estimate = Estimate(sum(len(t) for t in texts) // 4 + 1, 0)  # tokens for rate limits: ~4 chars each
        results = await gw.local(ctx, MODEL_NAME, estimate, lambda: [moderator.moderate(t) for t in texts])
    except Exception as exc:
        gw.refused(ctx, exc)
        raise
    return json_response(wire.moderation_to_dict(ctx.request_id, MODEL_NAME, results))


@router.get("/v1/models", include_in_schema=False)
async def list_models(request: Request) -> Response:
    """The models, aliases and groups the calling key may use (all of them for a key without a list)."""
    gw = get_gateway(request)
    ctx = new_context(request, "models")
    await gw.authenticate(ctx, credential(request))
    out = wire.models_to_dict(gw.registry.all())
    out["data"] += [wire.model_to_dict(name, dep) for name, dep in gw.router.public_groups()]
    allowed = ctx.principal.limits.models if ctx.principal.limits is not None else None
    if allowed is not None:
        out["data"] = [m for m in out["data"] if m["id"] in allowed]
    return json_response(out)


@router.get("/v1/models/{model_id:path}", include_in_schema=False)
async def get_model(request: Request, model_id: str) -> Response:
    """One model; a model the calling key may not use is as unknown as one that does not exist (404)."""
    gw = get_gateway(request)
    ctx = new_context(request, "models")
    await gw.authenticate(ctx, credential(request))
    allowed = ctx.principal.limits.models if ctx.principal.limits is not None else None
    if allowed is not None and model_id not in allowed:
        raise ModelNotFound(
            f"The model '{model_id}' does not exist or you do not have access to it.", param="model"
        )
    group = gw.router.group(model_id)
    dep = group.primary if group is not None else gw.registry.get(model_id)
    return json_response(wire.model_to_dict(model_id, dep))
