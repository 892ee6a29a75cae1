"""Pure-ASGI middleware (cheaper than BaseHTTPMiddleware): request id, body size limit, access log.

The request id is the caller's ``X-Request-ID`` when it is sane, else a fresh one; it is put in the scope
state, in the logging context and on every response. It also notes a client that disconnects, and answers
a request the server cuts at the end of its shutdown grace period with a 503 in the error envelope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tollhouse.api.render import anthropic_error_body, error_body, is_anthropic, render_error
from tollhouse.context import request_id_var
from tollhouse.errors import BodyTooLarge, Overloaded
from tollhouse.telemetry.logging import access_line, access_writer
from tollhouse.telemetry.observer import Begun, Telemetry, server_timing
from tollhouse.types import RequestContext, hex_id

access_log = logging.getLogger("tollhouse.access")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class GatewayMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        access_log_enabled: bool = True,
        access_log_sample: float = 1.0,
        telemetry: Telemetry | None = None,
        shutdown_retry_after_s: float = 1.0,
        finished: Callable[[RequestContext, int], None] | None = None,
    ) -> None:
        """``finished(ctx, status)``: told of every model request (one that built a context) once it has
        ended — the dashboard's live tail; it must not block, and what it raises is ignored."""
        self.app = app
        self.finished = finished
        self.max_body = max_body_bytes
        self.shutdown_retry_after_s = shutdown_retry_after_s
        self.access_log = access_log_enabled
        self.access_sample = access_log_sample
        self.telemetry = telemetry
        self.timing_headers = telemetry is None or telemetry.server_timing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = _incoming_request_id(scope) or hex_id()
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id_var.set(rid)
        rid_header = (b"x-request-id", rid.encode())
        # Anthropic's SDKs read the id from ``request-id``.
        id_headers = [rid_header, (b"request-id", rid_header[1])] if is_anthropic(scope) else [rid_header]
        status = 500
        begun = self.telemetry.begin(scope) if self.telemetry is not None else None
        response = _Response()
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _too_large(self.max_body)
            elif message["type"] == "http.disconnect" and not response.ended:
                response.client_gone = True
                ctx = scope["state"].get("ctx")
                if isinstance(ctx, RequestContext):
                    ctx.client_gone = True
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    response.ended = True
            elif message["type"] == "http.response.start":
                status = message["status"]
                response.headers = message["headers"] = [*message.get("headers", []), *id_headers]
                ctx = scope["state"].get("ctx")
                if isinstance(ctx, RequestContext) and ctx.attempts:
                    message["headers"].extend(_routing_headers(ctx))
                if isinstance(ctx, RequestContext):
                    _usage_headers(ctx, message["headers"])
                if isinstance(ctx, RequestContext) and self.timing_headers:
                    if not ctx.stream:
                        message["headers"].append(
                            (b"x-tollhouse-overhead-ms", f"{ctx.overhead_seconds() * 1000:.2f}".encode())
                        )
                    message["headers"].append((b"server-timing", server_timing(ctx)))
            await send(message)

        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await render_error(_too_large(self.max_body), rid, anthropic=is_anthropic(scope))(
                scope, receive, send_with_id
            )
            self._done(scope, 413, started, begun)
            request_id_var.reset(token)
            return

        outcome: int | None = None
        try:
            await self.app(scope, limited_receive, send_with_id)
        except asyncio.CancelledError:
            # Only the server cancels a request task (its shutdown grace period is over): answer the
            # client instead of leaving it a bare 500, and end here (re-raised, the server would log a
            # traceback per request).
            task = asyncio.current_task()
            if task is not None and task.uncancel() > 0:
                raise
            if not response.ended:
                outcome = 499 if response.client_gone else 503
                if response.client_gone:
                    status = 499 if response.headers is None else status
                else:
                    await self._cut(scope, receive, send_with_id, response, rid)
        finally:
            self._done(scope, status, started, begun, outcome)
            request_id_var.reset(token)

    async def _cut(self, scope: Scope, receive: Receive, send: Send, response: _Response, rid: str) -> None:
        """Answer a request cut at shutdown: a 503 with Retry-After, or, when its stream has begun, an error
        event that ends the stream. A plain response already under way can only be left unfinished."""
        exc = Overloaded(
            "The server is shutting down and could not finish this request; retry it.",
            code="server_shutting_down",
            retry_after=self.shutdown_retry_after_s,
        )
        if response.headers is None:
            await render_error(exc, rid, anthropic=is_anthropic(scope))(scope, receive, send)
        elif not response.ended and _is_event_stream(response.headers):
            if is_anthropic(scope):
                event = b"event: error\ndata: " + orjson.dumps(anthropic_error_body(exc, rid)) + b"\n\n"
            else:
                event = b"data: " + orjson.dumps(error_body(exc, rid)) + b"\n\n"
            await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _done(
        self, scope: Scope, status: int, started: float, begun: Begun | None, outcome: int | None = None
    ) -> None:
        """The one place a finished request is observed: access line, then metrics / traces / records.
        The access line reports the request's outcome as the metrics and the ledger do: a stream that
        failed (or whose client left) after its headers has its error's status (499: the client went
        away); ``outcome`` overrides it (a request cut at shutdown)."""
        elapsed = time.perf_counter() - started
        ctx = scope["state"].get("ctx")
        if not isinstance(ctx, RequestContext):
            ctx = None
        if self.access_log:
            shown = _outcome(status, ctx) if outcome is None else outcome
            failed = shown >= 400 or (ctx is not None and ctx.error_type is not None)
            if failed or self.access_sample >= 1.0 or random.random() < self.access_sample:
                self._log(scope, shown, status, elapsed, ctx)
        if self.telemetry is not None:
            self.telemetry.end(begun, ctx, status, elapsed)  # each sink takes the outcome from ``ctx``
        if ctx is not None and self.finished is not None:
            with contextlib.suppress(Exception):  # the tail must never break a request
                self.finished(ctx, ctx.status if ctx.status >= 400 else status)

    def _log(
        self, scope: Scope, status: int, http_status: int, elapsed: float, ctx: RequestContext | None
    ) -> None:
        fields: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "latency_ms": round(elapsed * 1000, 2),
        }
        if http_status != status:
            fields["http_status"] = http_status  # what the response's headers said
        if ctx is not None:
            fields.update(_ctx_fields(ctx))
        writer = access_writer()
        if writer is None:
            access_log.info("request", extra=fields)
        else:  # the same JSON line, without a LogRecord, written with the loop iteration's other lines
            writer.write(access_line(fields))


def _outcome(status: int, ctx: RequestContext | None) -> int:
    """The request's status as the ledger and the metrics have it: its error's, when it failed after a
    200 went out (a stream), else the HTTP status."""
    if ctx is not None and ctx.error_type is not None and ctx.status != 200:
        return ctx.status
    return status


class _Response:
    """What a request's response has done so far (for a request cut at shutdown)."""

    __slots__ = ("client_gone", "ended", "headers")

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] | None = None  # set when the response has begun
        self.ended = False
        self.client_gone = False


def _is_event_stream(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k == b"content-type" and v.startswith(b"text/event-stream") for k, v in headers)


def _ctx_fields(ctx: RequestContext) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": ctx.model_requested,
        "model_served": ctx.model_served,
        "deployment": ctx.deployment,
        "stream": ctx.stream,
        "overhead_ms": round(ctx.overhead_seconds() * 1000, 3),
    }
    if ctx.usage is not None:
        out["prompt_tokens"] = ctx.usage.prompt_tokens
        out["completion_tokens"] = ctx.usage.completion_tokens
    if ctx.ttft_seconds is not None:
        out["ttft_ms"] = round(ctx.ttft_seconds * 1000, 2)
    if ctx.finish_reason:
        out["finish_reason"] = ctx.finish_reason
    if ctx.error_type:
        out["error_type"] = ctx.error_type
    if ctx.principal.key_id:
        out["key_id"] = ctx.principal.key_id
    if ctx.attempts > 1 or ctx.fallbacks:
        out["attempts"] = ctx.attempts
        out["fallbacks"] = ctx.fallbacks
    if ctx.failures:
        out["failed_attempts"] = ctx.failures
    if ctx.route:
        out["route"] = ctx.route
    return out


def _routing_headers(ctx: RequestContext) -> list[tuple[bytes, bytes]]:
    """Which deployment served the request, how many attempts it took, and an automatic router's choice."""
    out = [(b"x-tollhouse-deployment", (ctx.deployment or "").encode())]
    if ctx.attempts > 1:
        out.append((b"x-tollhouse-attempts", str(ctx.attempts).encode()))
    if ctx.route:
        out.append((b"x-tollhouse-route", ctx.route.encode("latin-1", "replace")))
    return out


def _usage_headers(ctx: RequestContext, headers: list[tuple[bytes, bytes]]) -> None:
    """Rate-limit state from admission, and the request's cost once known (not for streams: their headers
    go out before the usage exists; the ledger has their cost)."""
    if ctx.ratelimit_headers:
        headers.extend(ctx.ratelimit_headers)
    if ctx.cost_usd is not None and not ctx.stream:
        headers.append((b"x-tollhouse-cost-usd", f"{ctx.cost_usd:.8f}".encode()))
    if ctx.prompt_version is not None and ctx.prompt_template is not None:
        headers.append((b"x-tollhouse-prompt", ctx.prompt_template.encode()))
        headers.append((b"x-tollhouse-prompt-version", ctx.prompt_version.encode()))
    if ctx.cache_status is not None:
        headers.append((b"x-tollhouse-cache", ctx.cache_status.encode()))
        if ctx.cache_similarity is not None:
            headers.append((b"x-tollhouse-cache-similarity", f"{ctx.cache_similarity:.4f}".encode()))
        if ctx.cache_saved_usd is not None:
            headers.append((b"x-tollhouse-cache-saved-usd", f"{ctx.cache_saved_usd:.8f}".encode()))


def _incoming_request_id(scope: Scope) -> str | None:
    for k, v in scope["headers"]:
        if k == b"x-request-id":
            s = v.decode("latin-1")
            return s if _SANE_ID.match(s) else None
    return None


def _content_length(scope: Scope) -> int | None:
    for k, v in scope["headers"]:
        if k == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"Request body is larger than the limit of {limit} bytes.")
