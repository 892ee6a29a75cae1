"""Anthropic routes: parse, call the gateway with the ``CHAT`` operation (the same stages as the OpenAI
ingress), render a ``message`` object or Anthropic's named SSE events. Thin on purpose."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from tollhouse.api.anthropic.protocol import CountTokensRequest, MessagesRequest
from tollhouse.api.cache_control import cache_control
from tollhouse.api.deps import credential, get_gateway, new_context, parse_body
from tollhouse.api.disconnect import gone, unless_disconnected
from tollhouse.api.render import anthropic_error_body, cost_trailer, json_response
from tollhouse.api.streaming import SSEResponse
from tollhouse.errors import ModelNotFound, TollhouseError
from tollhouse.operations import CHAT
from tollhouse.tools.report import tools_used_json
from tollhouse.types import ChatChunk, RequestContext
from tollhouse.wire.anthropic import response_to_anthropic
from tollhouse.wire.anthropic_stream import EventWriter

router = APIRouter()
log = logging.getLogger("tollhouse.api")


def _note_ignored(body: MessagesRequest) -> None:
    ignored = body.ignored_fields()
    if ignored:
        log.info("ignored unknown request fields", extra={"fields": ignored})


@router.post("/v1/messages", include_in_schema=False)
async def messages(request: Request) -> Response:
    gw = get_gateway(request)
    ctx = new_context(request, "chat", "anthropic")
    try:
        await gw.authenticate(ctx, credential(request))
        body = await parse_body(request, MessagesRequest)
        _note_ignored(body)
        req = body.to_internal()
        req.cache = cache_control(request.headers, body.cache)
        if req.stream:
            chunks = await unless_disconnected(request, ctx, gw.handle_stream(ctx, CHAT, req))
            if chunks is None:
                return gone()
            return _events(chunks, EventWriter(req.model), ctx.request_id, cost_trailer(ctx), ctx)
        resp = await unless_disconnected(request, ctx, gw.handle(ctx, CHAT, req))
        if resp is None:
            return gone()
        out = response_to_anthropic(resp)
        if ctx.tools_used is not None:  # the extension field of gateway tools (docs/TOOLS.md)
            out["tools_used"] = tools_used_json(ctx)
        if ctx.retrieval is not None:
            out["citations"] = ctx.retrieval.citations  # extension field: the chunks behind the markers
        return json_response(out)
    except Exception as exc:
        gw.refused(ctx, exc)
        raise


@router.post("/v1/messages/count_tokens", include_in_schema=False)
async def count_tokens(request: Request) -> Response:
    """The prompt's tokens: Anthropic's own count for an Anthropic deployment, else as the deployment behind
    ``model`` counts them for admission (exact for OpenAI vocabularies and the embedded model, otherwise a
    bound never below what the upstream bills)."""
    gw = get_gateway(request)
    ctx = new_context(request, "count_tokens", "anthropic")
    await gw.authenticate(ctx, credential(request))
    body = await parse_body(request, CountTokensRequest)
    req = body.to_internal()
    allowed = ctx.principal.limits.models if ctx.principal.limits is not None else None
    if allowed is not None and req.model not in allowed:
        raise ModelNotFound(
            f"The model '{req.model}' does not exist or you do not have access to it.", param="model"
        )
    group = gw.router.group(req.model)
    dep = group.primary if group is not None else gw.registry.get(req.model)
    upstream = getattr(dep.provider, "count_tokens", None)  # an Anthropic deployment counts exactly
    if callable(upstream):
        counted: int = await upstream(req)
        return json_response({"input_tokens": counted})
    return json_response({"input_tokens": gw.tokens.counter(dep).chat(req)})


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _events(
    chunks: AsyncIterator[ChatChunk],
    writer: EventWriter,
    request_id: str,
    trailer: Callable[[], bytes | None],
    ctx: RequestContext,
) -> SSEResponse[ChatChunk]:
    """Anthropic's events for the stream; a failure after the first event is an ``error`` event. A request
    that retrieved gets its ``citations`` on the closing ``message_delta``: the last event with data, which
    the anthropic SDK parses (extra fields kept, also through ``messages.stream()``) while it drops unknown
    event names."""

    def encode(chunk: ChatChunk) -> bytes:
        events = writer.feed(chunk)
        if len(events) == 1:
            return _sse(*events[0])
        return b"".join(_sse(name, data) for name, data in events)

    def end() -> bytes:
        out = writer.finish()
        if ctx.retrieval is not None:
            out[-2][1]["citations"] = ctx.retrieval.citations  # ("message_delta", …), ("message_stop", …)
        body = b"".join(_sse(name, data) for name, data in out[:-1])
        line = trailer()  # the cost, as an SSE comment, before the last event (clients stop reading there)
        return body + (line or b"") + _sse(*out[-1])

    def failed(exc: TollhouseError) -> bytes:
        return _sse("error", anthropic_error_body(exc, request_id))

    return SSEResponse(chunks, encode, end, failed, ctx)
