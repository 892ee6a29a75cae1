"""MockProvider: a deterministic fake model for tests, demos and benchmarks. It is NOT a real model.

It replies with ``cfg.reply`` or ``"echo: <last user message>"``, counts whitespace-separated words as
tokens, streams one word per chunk, and can simulate latency and upstream failures (429, 5xx, timeouts,
bad requests) on every request or on every Nth one, so gateway stages can be tested without a network.
``faults`` scripts one fault per request (or draws them at a seeded rate): error codes, 429 with Retry-After,
resets, latency spikes, slow first tokens, hangs, mid-stream disconnects, errors and stalls inside streams.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
import struct
import time
from collections.abc import AsyncIterator

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
from tollhouse.providers import extras
from tollhouse.providers.base import Health
from tollhouse.settings import MockModel
from tollhouse.types import (
    Capabilities,
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
    new_id,
)
from tollhouse.wire.anthropic import check_portable

# A token is a word plus the whitespace before it, so joining tokens gives back the exact text.
_TOKEN_RE = re.compile(r"\s*\S+")


def count_words(text: str) -> int:
    """The mock's token count: whitespace-separated words."""
    return len(text.split())


class MockProvider:
    """Fake deployment. ``calls`` counts every request received (simulated failures included);
    ``cancelled`` counts requests whose caller went away before the end (streams closed early, calls
    cancelled while they wait)."""

    def __init__(self, cfg: MockModel) -> None:
        self.name = cfg.name
        self.capabilities = Capabilities(chat=True, completions=True, embeddings=True)
        self.calls = 0
        self.failures = 0
        self.cancelled = 0
        self._cfg = cfg
        self._faults = FaultScript(cfg.faults, cfg.fault_rate, cfg.fault_seed)

    # ---- Provider protocol ---------------------------------------------------------------------------

    async def complete(self, req: ChatRequest) -> ChatResponse:
        check_portable(req)
        extras.allowed(req.vendor, frozenset(), self.name)  # a fake honours no vendor field: log them
        await self._before_answer()
        tokens, finish = self._reply(self._chat_reply(req.messages), req.max_tokens, req.stop)
        return ChatResponse(
            id=new_id("chatcmpl"),
            model=req.model,
            choices=[Choice(0, Message(role="assistant", content="".join(tokens)), finish)],
            usage=Usage(_prompt_words(req.messages), len(tokens)),
        )

    async def stream(self, req: ChatRequest) -> AsyncIterator[ChatChunk]:
        check_portable(req)
        extras.allowed(req.vendor, frozenset(), self.name)
        fault = await self._begin()
        tokens, finish = self._reply(self._chat_reply(req.messages), req.max_tokens, req.stop)
        cid, created = new_id("chatcmpl"), int(time.time())
        finished = False
        try:
            # OpenAI's shape: a role chunk (carrying the first word here), content chunks, a finish chunk,
            # then the usage chunk with no choices.
            first = tokens[0] if tokens else ""
            await self._mid_stream(fault, 0)
            yield ChatChunk(
                cid, req.model, [ChunkChoice(0, Delta(role="assistant", content=first))], None, created
            )
            for i, tok in enumerate(tokens[1:], 1):
                await self._pause(self._cfg.chunk_ms)
                await self._mid_stream(fault, i)
                yield ChatChunk(cid, req.model, [ChunkChoice(0, Delta(content=tok))], None, created)
            yield ChatChunk(cid, req.model, [ChunkChoice(0, Delta(), finish)], None, created)
            yield ChatChunk(cid, req.model, [], Usage(_prompt_words(req.messages), len(tokens)), created)
            finished = True
        finally:
            if not finished:
                self.cancelled += 1

    async def complete_text(self, req: CompletionRequest) -> CompletionResponse:
        extras.allowed(req.vendor, frozenset(), self.name)
        await self._before_answer()
        tokens, finish = self._reply(self._cfg.reply or f"echo: {req.prompt}", req.max_tokens, req.stop)
        text = (req.prompt if req.echo else "") + "".join(tokens)
        return CompletionResponse(
            id=new_id("cmpl"),
            model=req.model,
            choices=[TextChoice(0, text, finish)],
            usage=Usage(count_words(req.prompt), len(tokens)),
        )

    async def stream_text(self, req: CompletionRequest) -> AsyncIterator[CompletionChunk]:
        extras.allowed(req.vendor, frozenset(), self.name)
        fault = await self._begin()
        tokens, finish = self._reply(self._cfg.reply or f"echo: {req.prompt}", req.max_tokens, req.stop)
        cid, created = new_id("cmpl"), int(time.time())
        finished = False
        try:
            first = (req.prompt if req.echo else "") + (tokens[0] if tokens else "")
            await self._mid_stream(fault, 0)
            yield CompletionChunk(cid, req.model, [TextChoice(0, first)], None, created)
            for i, tok in enumerate(tokens[1:], 1):
                await self._pause(self._cfg.chunk_ms)
                await self._mid_stream(fault, i)
                yield CompletionChunk(cid, req.model, [TextChoice(0, tok)], None, created)
            yield CompletionChunk(cid, req.model, [TextChoice(0, "", finish)], None, created)
            yield CompletionChunk(cid, req.model, [], Usage(count_words(req.prompt), len(tokens)), created)
            finished = True
        finally:
            if not finished:
                self.cancelled += 1

    async def embed(self, req: EmbeddingRequest) -> EmbeddingResponse:
        await self._before_answer()
        dim = req.dimensions or self._cfg.embedding_dim
        texts = [x if isinstance(x, str) else " ".join(map(str, x)) for x in req.input]
        words = sum(count_words(t) for t in texts)
        return EmbeddingResponse(
            model=req.model, data=[_unit_vector(t, dim) for t in texts], usage=Usage(words)
        )

    async def health(self) -> Health:
        return Health(ok=True, detail=f"{self.name}: mock")

    async def aclose(self) -> None:
        """Nothing to release; present for the protocol."""

    # ---- behaviour ------------------------------------------------------------------------------------

    async def _before_answer(self) -> None:
        """A whole answer's latency and faults (they act before it); a cancelled wait counts."""
        try:
            await self._mid_stream(await self._begin(), 1 << 30)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def _begin(self) -> Fault | None:
        """Count the request, wait ``latency_ms``, then fail it if this request is one that must fail.
        Returns the request's scripted fault when it acts later, inside a stream."""
        self.calls += 1
        number = self.calls
        fault = self._faults.next()
        await self._pause(self._cfg.latency_ms)
        cfg = self._cfg
        if fault is not None:
            fault = await self._early_fault(fault)
        if cfg.fail_status is None or (cfg.fail_every > 0 and number % cfg.fail_every != 0):
            return fault
        self.failures += 1
        raise _simulated_error(cfg.fail_status, self.name, cfg.retry_after_s)

    async def _early_fault(self, fault: Fault) -> Fault | None:
        """Faults that act before any response; the in-stream ones are handed back."""
        kind, arg, retry_after = fault
        if kind in ("latency", "slow_first_token"):
            await self._pause(arg)
            return None
        if kind == "hang":
            await asyncio.sleep(_FOREVER_S)
        if kind in ("status", "reset", "context", "filter"):
            self.failures += 1
            if kind == "reset":
                raise UpstreamConnectionError(f"mock {self.name!r}: connection reset by peer (simulated)")
            if kind == "context":
                raise UpstreamContextWindowExceeded(
                    f"mock {self.name!r}: context window exceeded (simulated)"
                )
            if kind == "filter":
                raise UpstreamContentFiltered(f"mock {self.name!r}: content filtered")
            raise _simulated_error(int(arg), self.name, retry_after)
        return fault if kind in ("drop", "error_in_stream", "stall") else None

    async def _mid_stream(self, fault: Fault | None, index: int) -> None:
        """Before chunk ``index``: end the stream the way the scripted fault says (non-streaming calls see
        the fault before their answer)."""
        if fault is None or index < fault[1]:
            return
        kind = fault[0]
        self.failures += 1
        if kind == "stall":
            await asyncio.sleep(_FOREVER_S)
        if kind == "drop":
            raise UpstreamUnavailable(f"mock {self.name!r}: stream ended early (simulated disconnect)")
        raise UpstreamUnavailable(f"mock {self.name!r}: error event inside the stream (simulated)")

    def _chat_reply(self, messages: list[Message]) -> str:
        if self._cfg.reply is not None:
            return self._cfg.reply
        last_user = next((m.text() for m in reversed(messages) if m.role == "user"), "")
        return f"echo: {last_user}"

    @staticmethod
    def _reply(text: str, max_tokens: int | None, stop: list[str] | None) -> tuple[list[str], str]:
        """Cut the reply at the first stop string, then at ``max_tokens`` words."""
        finish = "stop"
        if stop:
            cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
            if cuts:
                text = text[: min(cuts)]
        tokens = _TOKEN_RE.findall(text)
        if max_tokens is not None and len(tokens) > max_tokens:
            tokens = tokens[:max_tokens]
            finish = "length"
        return tokens, finish

    @staticmethod
    async def _pause(ms: float) -> None:
        # A zero delay skips the event-loop round trip so benchmarks measure the gateway, not the mock.
        if ms > 0:
            await asyncio.sleep(ms / 1000)


_FOREVER_S = 3600.0
Fault = tuple[str, float, float | None]  # kind, argument (ms, status or chunk index), Retry-After


class FaultScript:
    """The per-request fault sequence: ``faults`` in order (cycled), or — with ``rate`` — a seeded draw per
    request: a fault from ``faults`` with probability ``rate``, else none. Same seed, same sequence."""

    __slots__ = ("_i", "_rate", "_rng", "_script")

    def __init__(self, faults: list[str], rate: float | None, seed: int) -> None:
        self._script = [parse_fault(f) for f in faults]
        self._rate = rate
        self._rng = random.Random(seed)
        self._i = 0

    def next(self) -> Fault | None:
        script = self._script
        if not script:
            return None
        if self._rate is None:
            fault = script[self._i % len(script)]
            self._i += 1
        elif self._rng.random() < self._rate:
            fault = script[self._rng.randrange(len(script))]
        else:
            return None
        return None if fault[0] == "ok" else fault


def parse_fault(text: str) -> Fault:
    """``status:429:2`` → ("status", 429, 2.0);
    ``drop:3`` → ("drop", 3, None); ``hang`` → ("hang", 0, None)."""
    kind, _, rest = text.partition(":")
    arg, _, extra = rest.partition(":")
    return kind, float(arg or 0), float(extra) if extra else None


def _prompt_words(messages: list[Message]) -> int:
    return sum(count_words(m.text()) for m in messages)


def _simulated_error(status: int, name: str, retry_after: float | None) -> UpstreamError:
    message = f"mock {name!r}: simulated upstream HTTP {status}"
    if status == 429:
        return UpstreamRateLimited(message, retry_after=retry_after)
    if status in (504, 408):
        return UpstreamTimeout(message)
    if status in (401, 403):
        return UpstreamError(message)
    if 400 <= status < 500:
        return UpstreamBadRequest(message)
    return UpstreamUnavailable(message, status=status, retry_after=retry_after if status == 503 else None)


def _unit_vector(text: str, dim: int) -> list[float]:
    """A deterministic unit vector from sha256(text): same text, same vector; different text, different."""
    values: list[float] = []
    block = 0
    while len(values) < dim:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        # Eight unsigned 32-bit integers per digest, mapped onto [-1, 1].
        values.extend(v / 2147483647.5 - 1.0 for v in struct.unpack("<8I", digest))
        block += 1
    values = values[:dim]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
