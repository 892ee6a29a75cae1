"""The Gateway: runs every request through the pipeline stages and a provider.

    auth → admission (limits/budgets) → input guardrails → cache lookup → route → provider
         → output guardrails → cache store → settle → ledger

Streams do their post-response work as chunks flow and in the generator's ``finally``, so a client that
disconnects still has its usage settled and recorded and its upstream call closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tollhouse.errors import InvalidRequest, TollhouseError
from tollhouse.pipeline.auth import Authenticator, OpenAccess
from tollhouse.pipeline.cache import NoCache, ResponseCache
from tollhouse.pipeline.guard import GuardChain, NoGuards
from tollhouse.pipeline.ledger import Ledger, NoLedger
from tollhouse.pipeline.limits import Estimate, Limiter, Reservation, Unlimited
from tollhouse.providers.registry import Deployment, ModelRegistry
from tollhouse.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    RequestContext,
    Usage,
)

T = TypeVar("T")
C = TypeVar("C", ChatChunk, CompletionChunk)


def estimate_tokens(text_chars: int) -> int:
    """Cheap offline estimate (~4 characters per token) used for admission before exact counts exist."""
    return text_chars // 4 + 1


def _message_chars(messages: list[Message]) -> int:
    return sum(len(m.text()) + 4 for m in messages)


@dataclass(slots=True)
class Gateway:
    """Holds the stages and the registry. Stages default to pass-through implementations."""

    registry: ModelRegistry
    auth: Authenticator = field(default_factory=OpenAccess)
    limiter: Limiter = field(default_factory=Unlimited)
    guards: GuardChain = field(default_factory=NoGuards)
    cache: ResponseCache = field(default_factory=NoCache)
    ledger: Ledger = field(default_factory=NoLedger)

    # ---- shared steps -------------------------------------------------------------------------------

    async def authenticate(self, ctx: RequestContext, credential: str | None) -> None:
        ctx.principal = await self.auth.authenticate(ctx, credential)

    def _route(self, ctx: RequestContext, model: str, max_tokens: int | None) -> Deployment:
        ctx.model_requested = model
        dep = self.registry.get(model)
        ctx.deployment = dep.name
        ctx.model_served = dep.config.upstream_model
        cap = dep.config.max_output_tokens
        if max_tokens is not None and max_tokens > cap:
            raise InvalidRequest(
                f"max_tokens is too large: {max_tokens}. "
                f"This model supports at most {cap} completion tokens.",
                param="max_tokens",
            )
        if max_tokens is not None and max_tokens < 1:
            raise InvalidRequest("max_tokens must be at least 1.", param="max_tokens")
        return dep

    async def _call(self, ctx: RequestContext, fn: Callable[[], Awaitable[T]]) -> T:
        t0 = time.perf_counter()
        try:
            return await fn()
        finally:
            ctx.upstream_seconds += time.perf_counter() - t0

    def _finish(self, ctx: RequestContext, usage: Usage | None, error: BaseException | None) -> None:
        ctx.usage = usage
        if isinstance(error, TollhouseError):
            ctx.status, ctx.error_type = error.status, error.type
        elif error is not None:
            ctx.status, ctx.error_type = 499 if _is_cancel(error) else 500, type(error).__name__
        self.ledger.record(ctx)

    # ---- chat ---------------------------------------------------------------------------------------

    async def chat(self, ctx: RequestContext, req: ChatRequest) -> ChatResponse:
        dep = self._route(ctx, req.model, req.max_tokens)
        reservation = await self._admit(ctx, req, dep)
        usage: Usage | None = None
        error: BaseException | None = None
        try:
            req = await self.guards.check_input(ctx, req)
            resp = await self.cache.lookup(ctx, req)
            if resp is None:
                resp = await self._call(ctx, lambda: dep.provider.complete(req))
                resp = await self.guards.check_output(ctx, resp)
                await self.cache.store(ctx, req, resp)
                usage = resp.usage
            else:
                resp = await self.guards.check_output(ctx, resp)
            resp.model = req.model
            ctx.finish_reason = resp.choices[0].finish_reason if resp.choices else None
            return resp
        except BaseException as exc:
            error = exc
            raise
        finally:
            await reservation.settle(usage)
            self._finish(ctx, usage, error)

    async def chat_stream(self, ctx: RequestContext, req: ChatRequest) -> AsyncIterator[ChatChunk]:
        """Admit, route and open the upstream stream, waiting for its first chunk so that failures before
        any content surface as ordinary HTTP errors. Returns the stream to relay."""
        dep = self._route(ctx, req.model, req.max_tokens)
        ctx.stream = True
        reservation = await self._admit(ctx, req, dep)
        try:
            req = await self.guards.check_input(ctx, req)
            raw = dep.provider.stream(req)
            upstream = self.guards.guard_stream(ctx, raw)
        except BaseException as exc:
            await reservation.settle(None)
            self._finish(ctx, None, exc)
            raise
        # Wrappers (guardrails) don't close what they wrap when closed early, so the gateway closes the
        # provider's stream itself: that is what cancels the upstream call.
        return await self._relay(ctx, upstream, reservation, req.include_usage, raw)

    # ---- legacy completions --------------------------------------------------------------------------

    async def completion(self, ctx: RequestContext, req: CompletionRequest) -> CompletionResponse:
        dep = self._route(ctx, req.model, req.max_tokens)
        self._require(dep, "completions")
        reservation = await self._admit_text(ctx, req, dep)
        usage: Usage | None = None
        error: BaseException | None = None
        try:
            resp = await self._call(ctx, lambda: dep.provider.complete_text(req))
            resp.model = req.model
            usage = resp.usage
            ctx.finish_reason = resp.choices[0].finish_reason if resp.choices else None
            return resp
        except BaseException as exc:
            error = exc
            raise
        finally:
            await reservation.settle(usage)
            self._finish(ctx, usage, error)

    async def completion_stream(
        self, ctx: RequestContext, req: CompletionRequest
    ) -> AsyncIterator[CompletionChunk]:
        dep = self._route(ctx, req.model, req.max_tokens)
        self._require(dep, "completions")
        ctx.stream = True
        reservation = await self._admit_text(ctx, req, dep)
        return await self._relay(ctx, dep.provider.stream_text(req), reservation, req.include_usage)

    # ---- embeddings -----------------------------------------------------------------------------------

    async def embeddings(self, ctx: RequestContext, req: EmbeddingRequest) -> EmbeddingResponse:
        dep = self._route(ctx, req.model, None)
        self._require(dep, "embeddings")
        chars = sum(len(x) if isinstance(x, str) else len(x) * 4 for x in req.input)
        reservation = await self.limiter.admit(ctx, Estimate(estimate_tokens(chars), 0))
        usage: Usage | None = None
        error: BaseException | None = None
        try:
            resp = await self._call(ctx, lambda: dep.provider.embed(req))
            resp.model = req.model
            usage = resp.usage
            return resp
        except BaseException as exc:
            error = exc
            raise
        finally:
            await reservation.settle(usage)
            self._finish(ctx, usage, error)

    # ---- helpers ----------------------------------------------------------------------------------------

    @staticmethod
    def _require(dep: Deployment, capability: str) -> None:
        if not getattr(dep.provider.capabilities, capability):
            raise InvalidRequest(
                f"The model '{dep.name}' does not support {capability}.",
                param="model",
                code="model_not_supported",
            )

    async def _admit(self, ctx: RequestContext, req: ChatRequest, dep: Deployment) -> Reservation:
        self._require(dep, "chat")
        out = req.max_tokens or dep.config.max_output_tokens
        return await self.limiter.admit(ctx, Estimate(estimate_tokens(_message_chars(req.messages)), out))

    async def _admit_text(self, ctx: RequestContext, req: CompletionRequest, dep: Deployment) -> Reservation:
        out = req.max_tokens or dep.config.max_output_tokens
        return await self.limiter.admit(ctx, Estimate(estimate_tokens(len(req.prompt)), out))

    async def _relay(
        self,
        ctx: RequestContext,
        upstream: AsyncIterator[C],
        reservation: Reservation,
        include_usage: bool,
        raw: AsyncIterator[C] | None = None,
    ) -> AsyncIterator[C]:
        """Pull the first chunk now (errors before content become HTTP errors), then hand back a generator
        that relays the rest, records TTFT and usage, and always settles and records in ``finally``."""
        t0 = time.perf_counter()
        try:
            first = await upstream.__anext__()
        except StopAsyncIteration:
            first = None
        except BaseException as exc:
            ctx.upstream_seconds += time.perf_counter() - t0
            await _aclose(upstream, raw)
            await reservation.settle(None)
            self._finish(ctx, None, exc)
            raise
        ctx.ttft_seconds = time.perf_counter() - ctx.started
        ctx.upstream_seconds += time.perf_counter() - t0
        return self._rest(ctx, first, upstream, reservation, include_usage, raw)

    async def _rest(
        self,
        ctx: RequestContext,
        first: C | None,
        upstream: AsyncIterator[C],
        reservation: Reservation,
        include_usage: bool,
        raw: AsyncIterator[C] | None,
    ) -> AsyncIterator[C]:
        usage: Usage | None = None
        error: BaseException | None = None
        chunk = first
        try:
            while chunk is not None:
                if chunk.usage is not None:
                    usage = chunk.usage
                    if not include_usage:
                        chunk.usage = None
                for ch in chunk.choices:
                    if ch.finish_reason is not None:
                        ctx.finish_reason = ch.finish_reason
                if chunk.choices or chunk.usage is not None:
                    yield chunk
                t0 = time.perf_counter()
                try:
                    chunk = await upstream.__anext__()
                except StopAsyncIteration:
                    chunk = None
                finally:
                    ctx.upstream_seconds += time.perf_counter() - t0
        except BaseException as exc:
            error = exc
            raise
        finally:
            await _aclose(upstream, raw)
            await reservation.settle(usage)
            self._finish(ctx, usage, error)

    async def aclose(self) -> None:
        await self.ledger.aclose()
        await self.registry.aclose()


async def _aclose(*iterators: AsyncIterator[Any] | None) -> None:
    for it in iterators:
        close = getattr(it, "aclose", None)
        if close is not None:
            # Closing a broken upstream must not mask the original outcome.
            with contextlib.suppress(Exception):
                await close()


def _is_cancel(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.CancelledError | GeneratorExit)
