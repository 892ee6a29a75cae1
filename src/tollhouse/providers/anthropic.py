"""Provider for Anthropic's Messages API (``POST {api_base}/messages``).

One pooled upstream client per deployment (``providers.http``), ``x-api-key`` and ``anthropic-version`` on
every request; bodies and answers go through ``wire.anthropic``, streamed events through
``wire.anthropic_stream``. Transport and the mapping of failures onto the ``Upstream*`` errors
(``retry-after``, 429, 529 overloaded, 5xx, scrubbed messages) are the OpenAI-compatible provider's, whose
HTTP plumbing this class reuses.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

from tollhouse.errors import InvalidRequest, UpstreamUnavailable
from tollhouse.providers import http
from tollhouse.providers.base import Health
from tollhouse.providers.openai_compat import OpenAICompatProvider, _client
from tollhouse.providers.sse import SSEDecoder
from tollhouse.settings import AnthropicModel
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
from tollhouse.wire import anthropic as wire
from tollhouse.wire.anthropic_stream import ChunkReader

_JSON_HEADERS = {"Content-Type": "application/json"}
_SSE_HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream"}
_HEALTH_TIMEOUT_S = 2.0
# What ``count_tokens`` takes of a messages body.
_COUNTED = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"})


class AnthropicProvider(OpenAICompatProvider):
    """One deployment behind Anthropic's API. Build inside a running event loop (it owns a pooled session)."""

    def __init__(self, cfg: AnthropicModel) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                f"AnthropicProvider({cfg.name!r}) must be built inside a running event loop (the app "
                "lifespan), because it owns a pool of upstream connections"
            ) from None
        self.name = cfg.name
        self.capabilities = Capabilities(chat=True, tools=True, vision=True)
        self._cfg = cfg  # type: ignore[assignment]  # read for api_key_env in error messages only
        self._upstream_model = cfg.upstream_model
        self._max_tokens = cfg.max_output_tokens
        self._api_key = None
        headers = {"User-Agent": "tollhouse", "anthropic-version": cfg.anthropic_version}
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                raise ValueError(
                    f"model {cfg.name!r}: environment variable {cfg.api_key_env} is not set or empty "
                    "(api_key_env names the variable that holds the upstream API key)"
                )
            self._api_key = key
            headers["x-api-key"] = key
        self._http = _client(cfg.api_base, headers, cfg.max_connections, cfg.timeouts)
        target = self._http.target
        self._messages_url = target("POST", "/messages", _JSON_HEADERS)
        self._messages_sse = target("POST", "/messages", _SSE_HEADERS)
        self._models_url = target("GET", "/models")
        self._count_url = target("POST", "/messages/count_tokens", _JSON_HEADERS)

    # ---- Provider protocol ---------------------------------------------------------------------------

    async def complete(self, req: ChatRequest) -> ChatResponse:
        body = wire.request_to_anthropic(req, self._upstream_model, self._max_tokens, stream=False)
        return wire.response_from_anthropic(await self._post_json(self._messages_url, body), req.model)

    async def stream(self, req: ChatRequest) -> AsyncIterator[ChatChunk]:
        body = wire.request_to_anthropic(req, self._upstream_model, self._max_tokens, stream=True)
        reader = ChunkReader(req.model)
        async with aclosing(self._anthropic_events(body)) as events:
            async for kind, data in events:
                for chunk in reader.feed(kind, data):
                    yield chunk

    async def count_tokens(self, req: ChatRequest) -> int:
        """The prompt's input tokens by Anthropic's own count (``POST /messages/count_tokens``)."""
        full = wire.request_to_anthropic(req, self._upstream_model, self._max_tokens, stream=False)
        body = {k: v for k, v in full.items() if k in _COUNTED}
        answer = await self._post_json(self._count_url, body)
        return int(answer.get("input_tokens") or 0)

    async def complete_text(self, req: CompletionRequest) -> CompletionResponse:
        raise InvalidRequest(f"model {req.model!r} does not support text completions", param="model")

    async def stream_text(self, req: CompletionRequest) -> AsyncIterator[CompletionChunk]:
        raise InvalidRequest(f"model {req.model!r} does not support text completions", param="model")
        yield  # pragma: no cover - makes this an async generator

    async def embed(self, req: EmbeddingRequest) -> EmbeddingResponse:
        raise InvalidRequest(f"model {req.model!r} does not support embeddings", param="model")

    async def health(self) -> Health:
        started = time.perf_counter()
        try:
            resp = await self._http.request(self._models_url, total=_HEALTH_TIMEOUT_S)
            status, detail = resp.status, f"HTTP {resp.status}"
        except (http.HttpClientError, TimeoutError) as exc:
            status, detail = 0, f"unreachable ({type(exc).__name__})"
        ms = (time.perf_counter() - started) * 1000
        return Health(ok=0 < status < 500, detail=f"{self.name}: {detail}", latency_ms=ms)

    # ---- transport ----------------------------------------------------------------------------------

    async def _anthropic_events(
        self, body: dict[str, Any]
    ) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        """POST a stream request; yield each named event until ``message_stop``."""
        resp = await self._open(self._messages_sse, body)
        done = False
        try:
            if resp.content_type == "application/json":
                payload = await self._read_json_body(resp)
                raise self._classify(resp.status if payload.get("error") else 502, payload, None)
            decoder = SSEDecoder()
            while True:
                raw = await resp.read()
                for event, data in decoder.feed(raw) if raw else decoder.flush():
                    payload = self._parse_json(data)
                    kind = event.decode() or str(payload.get("type") or "")
                    if kind == "error":
                        raise self._classify(_error_status(payload), payload, None)
                    yield kind, payload
                    if kind == "message_stop":
                        done = True
                        return
                if not raw:
                    break
            raise UpstreamUnavailable(f"upstream {self.name!r}: stream ended early")
        except (http.HttpClientError, TimeoutError) as exc:
            raise self._transport_error(exc, "stream") from exc
        finally:
            if done:
                resp.release()
            else:
                resp.close()  # drop the connection so the upstream stops generating


# Anthropic's in-stream error types → the status the same error has as an HTTP answer.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "rate_limit_error": 429,
    "overloaded_error": 529,
    "api_error": 500,
    "request_too_large": 413,
}


def _error_status(payload: dict[str, Any]) -> int | None:
    err = payload.get("error")
    kind = err.get("type") if isinstance(err, dict) else None
    return _ERROR_STATUS.get(kind) if isinstance(kind, str) else None
