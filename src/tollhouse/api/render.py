"""Rendering, all of it: JSON bodies, SSE streams (with the cost trailer) and the error envelope (orjson, no
intermediate models). ``render_error`` is the one way an error becomes a response, from routes and from
the pure-ASGI layers alike."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import orjson
from starlette.responses import Response, StreamingResponse

from tollhouse.errors import TollhouseError, UpstreamError
from tollhouse.types import RequestContext

log = logging.getLogger("tollhouse.api")

T = TypeVar("T")

SSE_HEADERS = {
    "cache-control": "no-cache",
    "x-accel-buffering": "no",  # nginx and friends must not buffer the stream
}


def error_body(exc: TollhouseError, request_id: str | None) -> dict[str, Any]:
    """OpenAI's error envelope ``{"error": {"message", "type", "param", "code"}}``, plus the request id."""
    err: dict[str, Any] = {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}
    if request_id:
        err["request_id"] = request_id
    return {"error": err}


# RFC 9110 §15.5.2: a 401 names the scheme that would work (RFC 6750: Bearer), whoever raised it.
WWW_AUTHENTICATE = 'Bearer realm="tollhouse"'


def render_error(exc: TollhouseError, request_id: str | None) -> Response:
    headers = exc.headers()  # x-request-id is added by the middleware to every response
    if exc.status == 401:
        headers["www-authenticate"] = WWW_AUTHENTICATE
    return Response(
        orjson.dumps(error_body(exc, request_id)),
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


def json_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


def sse_response(
    chunks: AsyncIterator[T],
    to_dict: Callable[[T], dict[str, Any]],
    request_id: str,
    headers: dict[str, str] | None = None,
    trailer: Callable[[], bytes | None] | None = None,
) -> StreamingResponse:
    """``trailer``: called once the stream has ended well; what it returns (an SSE comment line) is sent
    just before ``data: [DONE]`` — how a stream reports what its headers could not (its cost)."""
    return StreamingResponse(
        _sse(chunks, to_dict, request_id, trailer),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **(headers or {})},
    )


async def _sse(
    chunks: AsyncIterator[T],
    to_dict: Callable[[T], dict[str, Any]],
    request_id: str,
    trailer: Callable[[], bytes | None] | None = None,
) -> Any:
    try:
        async for chunk in chunks:
            yield b"data: " + orjson.dumps(to_dict(chunk)) + b"\n\n"
    except TollhouseError as exc:
        # Headers are gone: the only honest signal left is an error event, then the end of the stream.
        log.warning("stream failed after first chunk", extra={"error_type": exc.type, "detail": str(exc)})
        yield b"data: " + orjson.dumps(error_body(exc, request_id)) + b"\n\n"
        return
    except Exception:
        log.exception("stream failed after first chunk")
        yield (
            b"data: "
            + orjson.dumps(error_body(UpstreamError("internal error during stream"), request_id))
            + b"\n\n"
        )
        return
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
    if trailer is not None:
        line = trailer()
        if line:
            yield line
    yield b"data: [DONE]\n\n"
