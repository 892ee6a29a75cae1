"""Rendering, all of it: JSON bodies, SSE streams (with the cost trailer) and the error envelope (orjson, no
intermediate models). ``render_error`` is the one way an error becomes a response, from routes and from
the pure-ASGI layers alike."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import orjson
from starlette.responses import Response
from starlette.types import Scope

from tollhouse.api.streaming import SSEResponse
from tollhouse.errors import TollhouseError
from tollhouse.types import ChatChunk, RequestContext

log = logging.getLogger("tollhouse.api")

T = TypeVar("T")

DONE = b"data: [DONE]\n\n"


def error_body(exc: TollhouseError, request_id: str | None) -> dict[str, Any]:
    """OpenAI's error envelope ``{"error": {"message", "type", "param", "code"}}``, plus the request id."""
    err: dict[str, Any] = {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}
    if request_id:
        err["request_id"] = request_id
    return {"error": err}


# Anthropic's error types by status (its envelope: ``{"type": "error", "error": {"type", "message"}}``).
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}
ANTHROPIC_PREFIX = "/v1/messages"


def is_anthropic(scope: Scope) -> bool:
    """Whether the request spoke Anthropic's Messages API (its errors then use Anthropic's envelope)."""
    path = scope.get("path")
    return isinstance(path, str) and path.startswith(ANTHROPIC_PREFIX)


def anthropic_error_body(exc: TollhouseError, request_id: str | None) -> dict[str, Any]:
    """Anthropic's envelope; our own code, when there is one, rides along as ``error.code``."""
    kind = _ANTHROPIC_TYPES.get(exc.status, "api_error" if exc.status >= 500 else "invalid_request_error")
    err: dict[str, Any] = {"type": kind, "message": exc.message}
    if exc.code is not None:
        err["code"] = exc.code
    body: dict[str, Any] = {"type": "error", "error": err}
    if request_id:
        body["request_id"] = request_id
    return body


# RFC 9110 §15.5.2: a 401 names the scheme that would work (RFC 6750: Bearer), whoever raised it.
WWW_AUTHENTICATE = 'Bearer realm="tollhouse"'


def render_error(exc: TollhouseError, request_id: str | None, *, anthropic: bool = False) -> Response:
    """``anthropic``: in Anthropic's envelope (requests to ``/v1/messages``), else OpenAI's."""
    headers = exc.headers()  # x-request-id is added by the middleware to every response
    if exc.status == 401:
        headers["www-authenticate"] = WWW_AUTHENTICATE
    body = anthropic_error_body(exc, request_id) if anthropic else error_body(exc, request_id)
    return Response(
        orjson.dumps(body),
        status_code=exc.status,
        media_type="application/json",
        headers=headers,
    )


def cost_trailer(ctx: RequestContext) -> Callable[[], bytes | None]:
    """The SSE comment ``: x-tollhouse-cost-usd=<usd>`` once a stream's cost is known (SSE clients,
    the OpenAI SDKs included, ignore comment lines)."""

    def line() -> bytes | None:
        cost = ctx.cost_usd
        return None if cost is None else f": x-tollhouse-cost-usd={cost:.8f}\n\n".encode()

    return line


def with_citations(
    chunks: AsyncIterator[ChatChunk], ctx: RequestContext
) -> tuple[AsyncIterator[ChatChunk], Callable[[], bytes | None]]:
    """A stream that retrieved chunks ends with one more chunk — the stream's id, no choices (the shape of
    the usage chunk) and the ``citations`` extension field — then the cost comment. Returns the stream to
    relay (closing it closes ``chunks``) and its trailer."""
    cost = cost_trailer(ctx)
    seen: dict[str, Any] = {}

    async def relay() -> AsyncIterator[ChatChunk]:
        try:
            async for chunk in chunks:
                seen["id"], seen["created"], seen["model"] = chunk.id, chunk.created, chunk.model
                yield chunk
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

    def line() -> bytes | None:
        got = ctx.retrieval
        event = b""
        if got is not None:
            body = {
                "id": seen.get("id", f"chatcmpl-{ctx.request_id}"),
                "object": "chat.completion.chunk",
                "created": seen.get("created", int(time.time())),
                "model": seen.get("model", ctx.model_requested or ""),
                "choices": [],
                "citations": got.citations,
            }
            event = b"data: " + orjson.dumps(body) + b"\n\n"
        return event + (cost() or b"") or None

    return relay(), line


def json_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


def sse_response(
    chunks: AsyncIterator[T],
    to_dict: Callable[[T], dict[str, Any]],
    request_id: str,
    headers: dict[str, str] | None = None,
    trailer: Callable[[], bytes | None] | None = None,
    ctx: RequestContext | None = None,
) -> SSEResponse[T]:
    """``trailer``: called once the stream has ended well; what it returns (an SSE comment line) is sent
    just before ``data: [DONE]`` — how a stream reports what its headers could not (its cost). ``ctx``:
    told when the client leaves mid-stream."""

    def encode(chunk: T) -> bytes:
        return b"data: " + orjson.dumps(to_dict(chunk)) + b"\n\n"

    def end() -> bytes:
        line = trailer() if trailer is not None else None
        return line + DONE if line else DONE

    def failed(exc: TollhouseError) -> bytes:
        return b"data: " + orjson.dumps(error_body(exc, request_id)) + b"\n\n"

    return SSEResponse(chunks, encode, end, failed, ctx, headers)
