"""Provider for any OpenAI-compatible upstream (OpenAI, vLLM, Ollama, llama.cpp server, LM Studio, …).

One pooled upstream client per deployment (``providers.http``, built in the app lifespan; ADR 0031);
request bodies and responses go through ``tollhouse.wire.openai``; streams are parsed as SSE event by
event; every failure is mapped onto the ``Upstream*`` errors, with messages that name the deployment and
never carry the API key.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from tollhouse.context import upstream_headers_var
from tollhouse.errors import (
    UpstreamBadRequest,
    UpstreamConnectionError,
    UpstreamContentFiltered,
    UpstreamContextWindowExceeded,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tollhouse.providers import extras, http
from tollhouse.providers.base import Health
from tollhouse.providers.sse import SSEDecoder
from tollhouse.settings import OpenAIModel, Timeouts
from tollhouse.types import (
    Capabilities,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
)
from tollhouse.wire import openai as wire
from tollhouse.wire.anthropic import check_portable

_JSON_HEADERS = {"Content-Type": "application/json"}
_SSE_HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream"}


_HEALTH_TIMEOUT_S = 2.0
_MAX_ERROR_BODY = 64 * 1024
_MAX_MESSAGE = 300
_CONTEXT_SIGNALS = (
    "context length",
    "maximum context",
    "too many tokens",
    "context window",
    "context size",
    "prompt is too long",  # Anthropic
)
_FILTER_SIGNALS = ("content_filter", "content filter", "content policy", "content management policy")
_SECRET_RE = re.compile(r"(?i)(bearer\s+\S+|\b(?:sk|pk|rk)-[A-Za-z0-9_\-*.]{6,})")


K = TypeVar("K", ChatChunk, CompletionChunk)  # the chunks of a chat or a text-completion stream


class OpenAICompatProvider:
    """One deployment behind an OpenAI-compatible HTTP API. Build inside a running event loop."""

    def __init__(self, cfg: OpenAIModel) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                f"OpenAICompatProvider({cfg.name!r}) must be built inside a running event loop "
                "(the app lifespan), because it owns a pool of upstream connections"
            ) from None
        self.name = cfg.name
        # What the upstream is configured to serve; tools, images, audio and JSON schemas are relayed.
        self.capabilities = Capabilities(
            chat=cfg.chat,
            completions=cfg.completions,
            embeddings=cfg.embeddings,
            tools=cfg.chat,
            vision=cfg.chat,
            audio=cfg.chat,
            json_schema=cfg.chat,
        )
        self._cfg = cfg
        self._upstream_model = cfg.upstream_model
        self._extra_params = frozenset(cfg.extra_params)
        # The key is read once here so a missing variable fails start-up, not the first request.
        self._api_key: str | None = None
        headers = {"User-Agent": "tollhouse"}
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                raise ValueError(
                    f"model {cfg.name!r}: environment variable {cfg.api_key_env} is not set or empty "
                    "(api_key_env names the variable that holds the upstream API key)"
                )
            self._api_key = key
            headers["Authorization"] = f"Bearer {key}"
        self._http = _client(cfg.api_base, headers, cfg.max_connections, cfg.timeouts)
        target = self._http.target
        self._chat_url = target("POST", "/chat/completions", _JSON_HEADERS)
        self._chat_sse = target("POST", "/chat/completions", _SSE_HEADERS)
        self._completions_url = target("POST", "/completions", _JSON_HEADERS)
        self._completions_sse = target("POST", "/completions", _SSE_HEADERS)
        self._embeddings_url = target("POST", "/embeddings", _JSON_HEADERS)
        self._models_url = target("GET", "/models")

    # ---- Provider protocol ---------------------------------------------------------------------------

    async def complete(self, req: ChatRequest) -> ChatResponse:
        check_portable(req)  # what only Anthropic understands: a 400 by name
        body = self._with_vendor(wire.chat_request_to_dict(req, self._upstream_model, stream=False), req)
        return wire.chat_response_from_dict(await self._post_json(self._chat_url, body), req.model)

    def stream(self, req: ChatRequest) -> AsyncIterator[ChatChunk]:
        def body() -> dict[str, Any]:
            check_portable(req)  # what only Anthropic understands: a 400 by name
            return self._with_vendor(wire.chat_request_to_dict(req, self._upstream_model, stream=True), req)

        return self._stream(self._chat_sse, body, lambda d: wire.chat_chunk_from_dict(d, req.model))

    async def complete_text(self, req: CompletionRequest) -> CompletionResponse:
        body = self._with_vendor(
            wire.completion_request_to_dict(req, self._upstream_model, stream=False), req
        )
        return wire.completion_response_from_dict(
            await self._post_json(self._completions_url, body), req.model
        )

    def stream_text(self, req: CompletionRequest) -> AsyncIterator[CompletionChunk]:
        def body() -> dict[str, Any]:
            return self._with_vendor(
                wire.completion_request_to_dict(req, self._upstream_model, stream=True), req
            )

        return self._stream(
            self._completions_sse, body, lambda d: wire.completion_chunk_from_dict(d, req.model)
        )

    async def embed(self, req: EmbeddingRequest) -> EmbeddingResponse:
        body = wire.embedding_request_to_dict(req, self._upstream_model)
        return wire.embedding_response_from_dict(await self._post_json(self._embeddings_url, body), req.model)

    async def health(self) -> Health:
        started = time.perf_counter()
        try:
            resp = await self._http.request(self._models_url, total=_HEALTH_TIMEOUT_S)
            status, detail = resp.status, f"HTTP {resp.status}"
        except (http.HttpClientError, TimeoutError) as exc:
            status, detail = 0, f"unreachable ({type(exc).__name__})"
        ms = (time.perf_counter() - started) * 1000
        # Any answer below 500 proves the upstream is up; a 401 here is a config problem, not an outage.
        return Health(ok=0 < status < 500, detail=f"{self.name}: {detail}", latency_ms=ms)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _with_vendor(self, body: dict[str, Any], req: ChatRequest | CompletionRequest) -> dict[str, Any]:
        """Add the vendor fields this deployment allows (never over a field the gateway set)."""
        if req.vendor:
            for key, value in extras.allowed(req.vendor, self._extra_params, self.name).items():
                body.setdefault(key, value)
        return body

    # ---- transport ----------------------------------------------------------------------------------

    async def _post_json(self, head: bytes, body: dict[str, Any]) -> dict[str, Any]:
        """POST (``head`` from ``HttpClient.target``) with the trace context of the call under way."""
        try:
            resp = await self._http.request(head, orjson.dumps(body), upstream_headers_var.get())
        except (http.HttpClientError, TimeoutError) as exc:
            raise self._transport_error(exc, "request") from exc
        if not 200 <= resp.status < 300:
            raise self._status_error(resp.status, resp.body[:_MAX_ERROR_BODY], resp.headers)
        data = self._parse_json(resp.body)
        if data.get("error"):
            raise self._classify(_status_in(data["error"]), data, None)
        return data

    async def _open(self, head: bytes, body: dict[str, Any]) -> http.StreamResponse:
        """POST a stream request; the answer once its head is in, a 2xx (else its error is raised)."""
        try:
            resp = await self._http.open(head, orjson.dumps(body), upstream_headers_var.get())
            if not 200 <= resp.status < 300:
                raw = await resp.read_upto(_MAX_ERROR_BODY)
                resp.close()
                raise self._status_error(resp.status, raw, resp.headers)
        except (http.HttpClientError, TimeoutError) as exc:
            raise self._transport_error(exc, "request") from exc
        return resp

    async def _stream(
        self, head: bytes, body: Callable[[], dict[str, Any]], convert: Callable[[dict[str, Any]], K]
    ) -> AsyncGenerator[K, None]:
        """POST a stream request (``body`` is built on the first step, so a bad request fails there) and
        yield each SSE data payload, converted, until ``[DONE]``. Usage is held back and sent last, alone,
        whether the upstream attached it to a content chunk or to every chunk: consumers rely on "last chunk
        = usage, no choices"."""
        resp = await self._open(head, body())
        tail: K | None = None
        done = False
        try:
            if resp.content_type == "application/json":
                # Some servers answer a stream request with a plain JSON error (or ignore stream=true).
                payload = await self._read_json_body(resp)
                if payload.get("error"):
                    raise self._classify(_status_in(payload["error"]), payload, None)
                raise UpstreamUnavailable(f"upstream {self.name!r} answered a stream request with JSON")
            decoder = SSEDecoder()
            finished = False  # a choice reported finish_reason: lenient on servers that omit [DONE]
            while not done:
                raw = await resp.read()
                for event, data in decoder.feed(raw) if raw else decoder.flush():
                    if data == b"[DONE]":
                        done = True
                        break
                    payload = self._parse_json(data)
                    if event == b"error" or payload.get("error"):
                        err = payload.get("error", payload)
                        raise self._classify(_status_in(err), payload, None)
                    if not finished:
                        finished = any(c.get("finish_reason") for c in payload.get("choices") or ())
                    chunk = convert(payload)
                    if chunk.usage is not None:
                        tail = replace(chunk, choices=[])
                        chunk.usage = None
                        if not chunk.choices:
                            continue
                    yield chunk
                if not raw and not done:
                    if not finished:
                        raise UpstreamUnavailable(f"upstream {self.name!r}: stream ended early")
                    done = True
        except (http.HttpClientError, TimeoutError) as exc:
            raise self._transport_error(exc, "stream") from exc
        finally:
            if done:
                resp.release()
            else:
                # close(), not release(): drop the connection so the upstream stops generating.
                resp.close()
        if tail is not None:
            yield tail

    def _parse_json(self, data: bytes) -> dict[str, Any]:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamUnavailable(f"upstream {self.name!r}: invalid JSON from upstream") from None
        if not isinstance(payload, dict):
            raise UpstreamUnavailable(f"upstream {self.name!r}: invalid JSON from upstream (not an object)")
        return payload

    async def _read_json_body(self, resp: http.StreamResponse) -> dict[str, Any]:
        return _error_payload(await resp.read_upto(_MAX_ERROR_BODY))

    # ---- error mapping ------------------------------------------------------------------------------

    def _status_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError:
        return self._classify(status, _error_payload(raw), headers)

    def _classify(self, status: int | None, payload: Any, headers: Mapping[str, str] | None) -> UpstreamError:
        """Map an HTTP status (or an in-stream error, status None) and its body onto the error tree."""
        message, code = _message_and_code(payload)
        message = self._scrub(message)
        where = f"upstream {self.name!r}"
        retry_after = _retry_after(headers) if headers is not None else None
        if status == 429:
            return UpstreamRateLimited(f"{where} is rate limiting: {message}", retry_after=retry_after)
        if status in (401, 403):
            # The client did nothing wrong: it is the gateway's own upstream credential that failed.
            env = self._cfg.api_key_env or "(no api_key_env configured)"
            return UpstreamError(
                f"{where} rejected the gateway's upstream credentials (HTTP {status}); check {env}"
            )
        if status == 408:
            return UpstreamTimeout(f"{where} timed out (HTTP 408): {message}")
        if status is None or 400 <= status < 500:
            lowered = message.lower()
            if code == "context_length_exceeded" or any(s in lowered for s in _CONTEXT_SIGNALS):
                return UpstreamContextWindowExceeded(f"{where}: {message}")
            if code in ("content_filter", "content_policy_violation") or any(
                s in lowered for s in _FILTER_SIGNALS
            ):
                return UpstreamContentFiltered(f"{where} filtered the content: {message}")
            if status is not None:
                return UpstreamBadRequest(f"{where} refused the request (HTTP {status}): {message}")
        shown = f"HTTP {status}" if status is not None else "error in stream"
        return UpstreamUnavailable(
            f"{where} failed ({shown}): {message}", status=status or 502, retry_after=retry_after
        )

    def _transport_error(self, exc: BaseException, during: str) -> UpstreamError:
        where = f"upstream {self.name!r}"
        if isinstance(exc, TimeoutError):  # http.ConnectTimeout / ReadTimeout and asyncio's alike
            return UpstreamTimeout(f"{where} timed out during the {during}")
        detail = self._scrub(str(exc)) or "no detail"
        if during == "stream" or isinstance(exc, http.PayloadError):
            what = "stream" if during == "stream" else "response"
            return UpstreamUnavailable(f"{where}: {what} ended early ({type(exc).__name__}: {detail})")
        if isinstance(exc, http.ConnectError):
            # Never reached the upstream (refused, DNS, TLS) or the connection was reset.
            return UpstreamConnectionError(f"{where} is unreachable ({type(exc).__name__}: {detail})")
        if isinstance(exc, http.ProtocolError):
            return UpstreamUnavailable(f"{where} sent an invalid HTTP answer ({detail})")
        return UpstreamUnavailable(f"{where} is unreachable ({type(exc).__name__}: {detail})")

    def _scrub(self, text: str) -> str:
        text = " ".join(text.split())
        if self._api_key:
            text = text.replace(self._api_key, "[redacted]")
        text = _SECRET_RE.sub("[redacted]", text)
        return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _message_and_code(payload: Any) -> tuple[str, str | None]:
    """Pull a human message and a code out of the many error shapes upstreams use."""
    err = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(err, str):
        return err, None
    if not isinstance(err, dict):
        return str(err), None
    message = err.get("message") or err.get("detail") or err.get("msg") or ""
    if not isinstance(message, str):
        message = orjson.dumps(message).decode()
    code = err.get("code")
    if not isinstance(code, str):
        code = err.get("type") if isinstance(err.get("type"), str) else None
    return message or "no message", code


def _status_in(err: Any) -> int | None:
    """The HTTP-like status some servers (vLLM, llama.cpp) put in ``error.code`` of a 200 body."""
    if isinstance(err, dict):
        for key in ("code", "status"):
            value = err.get(key)
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            if isinstance(value, int) and 400 <= value < 600:
                return value
    return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` (OpenAI) or ``Retry-After`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")  # names are lower case (http.Response.headers)
    with suppress(ValueError):
        if ms:
            return max(0.0, float(ms) / 1000)
    value = headers.get("retry-after")
    if not value:
        return None
    with suppress(ValueError):
        return max(0.0, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _client(base: str, headers: dict[str, str], max_connections: int, t: Timeouts) -> http.HttpClient:
    # connect also bounds the wait for a free pooled connection, so a saturated pool fails fast.
    timeouts = http.Timeouts(connect=t.connect_s, read=t.read_s, total=t.total_s)
    return http.HttpClient(base, headers, max_connections=max_connections, timeouts=timeouts)


def _error_payload(raw: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"message": raw.decode("utf-8", "replace")}
    return payload if isinstance(payload, dict) else {"message": str(payload)}
