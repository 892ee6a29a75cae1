"""The Gateway: runs every request through the pipeline stages and a provider.

    auth → admission (limits/budgets) → input guardrails → cache lookup → route → provider
         → output guardrails → cache store → settle → ledger

Streams do their post-response work as chunks flow and in the generator's ``finally``, so a client that
disconnects still has its usage settled and recorded and its upstream call closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tollhouse.caching.entry import Assembler
from tollhouse.caching.entry import replay as entry_replay
from tollhouse.errors import (
    Downgrade,
    InvalidRequest,
    ResponseSchemaMismatch,
    TollhouseError,
    UpstreamTimeout,
)
from tollhouse.guardrails.output import repair_request
from tollhouse.pipeline.admission import Limiter, Unlimited
from tollhouse.pipeline.auth import Authenticator, OpenAccess
from tollhouse.pipeline.cache import NoCache, ResponseCache
from tollhouse.pipeline.guard import GuardChain, NoGuards
from tollhouse.pipeline.ledger import Ledger, NoLedger
from tollhouse.providers.registry import Deployment, ModelRegistry
from tollhouse.routing.auto import cascade
from tollhouse.routing.group import Group
from tollhouse.routing.router import Opener, Router, StreamStart, aclose_all
from tollhouse.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Estimate,
    Message,
    RequestContext,
    Reservation,
    Usage,
)

T = TypeVar("T")
R = TypeVar("R", CompletionResponse, EmbeddingResponse)
C = TypeVar("C", ChatChunk, CompletionChunk)
Q = TypeVar("Q", CompletionRequest, EmbeddingRequest)


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
    router: Router = None  # type: ignore[assignment]  # built from the registry when not given

    def __post_init__(self) -> None:
        if self.router is None:
            self.router = Router(self.registry)

    # ---- shared steps -------------------------------------------------------------------------------

    async def authenticate(self, ctx: RequestContext, credential: str | None) -> None:
        t0 = time.perf_counter()
        ctx.principal = await self.auth.authenticate(ctx, credential)
        ctx.mark_stage("auth", t0)

    def _route(
        self,
        ctx: RequestContext,
        model: str,
        max_tokens: int | None,
        req: ChatRequest | CompletionRequest | None = None,
    ) -> Group:
        """Resolve the model name to its group (the request is validated against the group's first
        deployment; routing picks the one that serves it)."""
        t0 = time.perf_counter()
        ctx.model_requested = model
        group = self.router.resolve(ctx, req, model)
        dep = group.primary
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
        ctx.mark_stage("route", t0)
        return group

    async def _call(self, ctx: RequestContext, fn: Callable[[], Awaitable[T]]) -> T:
        t0 = time.perf_counter()
        try:
            return await fn()
        finally:
            ctx.upstream_seconds += time.perf_counter() - t0

    def refused(self, ctx: RequestContext, error: BaseException) -> None:
        """Record a request that failed before the pipeline recorded it: a bad key (401), a malformed
        body, an unknown model or an invalid parameter. No-op when it is already recorded."""
        self._finish(ctx, None, error)

    def _finish(self, ctx: RequestContext, usage: Usage | None, error: BaseException | None) -> None:
        if ctx.recorded:
            return
        ctx.recorded = True
        ctx.usage = usage
        if isinstance(error, TollhouseError):
            ctx.status, ctx.error_type = error.status, error.type
        elif error is not None:
            ctx.status, ctx.error_type = 499 if _is_cancel(error) else 500, type(error).__name__
        if error is not None:
            ctx.error_class = type(error).__name__
        t0 = time.perf_counter()
        self.ledger.record(ctx)
        ctx.mark_stage("ledger", t0)

    # ---- chat ---------------------------------------------------------------------------------------

    async def chat(self, ctx: RequestContext, req: ChatRequest) -> ChatResponse:
        group = self._route(ctx, req.model, req.max_tokens, req)
        group, reservation = await self._admit(ctx, req, group)
        usage: Usage | None = None
        error: BaseException | None = None
        try:
            t = time.perf_counter()
            req = await self.guards.check_input(ctx, req)
            t = ctx.mark_stage("guard_input", t)
            resp = await self.cache.lookup(ctx, req)
            ctx.mark_stage("cache_lookup", t)
            if resp is None:
                resp = await self._call(ctx, lambda: self._complete(ctx, group, req))
                usage = resp.usage  # spent even if an output guardrail blocks the answer
                t = time.perf_counter()
                try:
                    resp = await self.guards.check_output(ctx, resp)
                except ResponseSchemaMismatch as exc:
                    # One repair retry: the model sees its answer and the validation error, then the
                    # second answer must pass (else the error stands).
                    fix = repair_request(req, resp, exc.message)
                    resp = await self._call(ctx, lambda: self._complete(ctx, group, fix))
                    usage = resp.usage = Usage(
                        usage.prompt_tokens + resp.usage.prompt_tokens,
                        usage.completion_tokens + resp.usage.completion_tokens,
                    )
                    resp = await self.guards.check_output(ctx, resp)
                t = ctx.mark_stage("guard_output", t)
                await self.cache.store(ctx, req, resp)
                ctx.mark_stage("cache_store", t)
            else:
                t = time.perf_counter()
                resp = await self.guards.check_output(ctx, resp)
                ctx.mark_stage("guard_output", t)
            resp.model = req.model
            ctx.finish_reason = resp.choices[0].finish_reason if resp.choices else None
            return resp
        except BaseException as exc:
            error = exc
            raise
        finally:
            await reservation.settle(usage)
            self._finish(ctx, usage, error)

    def _complete(self, ctx: RequestContext, group: Group, req: ChatRequest) -> Awaitable[ChatResponse]:
        def call(g: Group) -> Awaitable[ChatResponse]:
            return self.router.call(ctx, g, lambda d: d.provider.complete(req), "chat", req.max_tokens)

        auto = self.router.cascading(req.model)
        return call(group) if auto is None else cascade(ctx, auto, group, req, call)

    async def chat_stream(self, ctx: RequestContext, req: ChatRequest) -> AsyncIterator[ChatChunk]:
        """Admit, route and open the upstream stream, waiting for its first content chunk so that failures
        before any content fail over or surface as ordinary HTTP errors. Returns the stream to relay."""
        group = self._route(ctx, req.model, req.max_tokens, req)
        ctx.stream = True
        group, reservation = await self._admit(ctx, req, group)
        try:
            t = time.perf_counter()
            req = await self.guards.check_input(ctx, req)
            ctx.mark_stage("guard_input", t)

            def opener(dep: Deployment) -> tuple[AsyncIterator[ChatChunk], AsyncIterator[ChatChunk]]:
                # Wrappers (guardrails) don't close what they wrap when closed early, so the gateway
                # closes the provider's stream itself: that is what cancels the upstream call.
                raw = dep.provider.stream(req)
                return self.guards.guard_stream(ctx, raw), raw

            t = time.perf_counter()
            cached = await self.cache.lookup(ctx, req)
            ctx.mark_stage("cache_lookup", t)
            if cached is not None:
                cached.model = req.model
                replay = _iterate(entry_replay(cached, req.include_usage))
                ctx.ttft_seconds = time.perf_counter() - ctx.started
                start = StreamStart([], self.guards.guard_stream(ctx, replay), replay)
                return self._rest(ctx, start, reservation, req.include_usage, cached=True)
            start = await self._open(ctx, group, opener, "chat", req.max_tokens)
        except BaseException as exc:
            await reservation.settle(None)
            self._finish(ctx, None, exc)
            raise
        store = None if ctx.cache_plan is None else (req, Assembler())
        return self._rest(ctx, start, reservation, req.include_usage, store=store)

    # ---- legacy completions --------------------------------------------------------------------------

    async def completion(self, ctx: RequestContext, req: CompletionRequest) -> CompletionResponse:
        group = self._route(ctx, req.model, req.max_tokens, req)
        self._require(group.primary, "completions")
        group, reservation = await self._admit_text(ctx, req, group)
        req = await self._checked(ctx, reservation, self.guards.check_completion_input, req)
        return await self._settled(
            ctx,
            reservation,
            req.model,
            lambda: self.router.call(
                ctx, group, lambda d: d.provider.complete_text(req), "completions", req.max_tokens
            ),
            check=self.guards.check_completion_output,
        )

    async def completion_stream(
        self, ctx: RequestContext, req: CompletionRequest
    ) -> AsyncIterator[CompletionChunk]:
        group = self._route(ctx, req.model, req.max_tokens, req)
        self._require(group.primary, "completions")
        ctx.stream = True
        group, reservation = await self._admit_text(ctx, req, group)
        try:
            t = time.perf_counter()
            req = await self.guards.check_completion_input(ctx, req)
            ctx.mark_stage("guard_input", t)

            def opener(
                dep: Deployment,
            ) -> tuple[AsyncIterator[CompletionChunk], AsyncIterator[CompletionChunk]]:
                raw = dep.provider.stream_text(req)  # closed by the gateway (wrappers don't close it)
                return self.guards.guard_completion_stream(ctx, raw), raw

            start = await self._open(ctx, group, opener, "completions", req.max_tokens)
        except BaseException as exc:
            await reservation.settle(None)
            self._finish(ctx, None, exc)
            raise
        return self._rest(ctx, start, reservation, req.include_usage)

    # ---- embeddings -----------------------------------------------------------------------------------

    async def embeddings(self, ctx: RequestContext, req: EmbeddingRequest) -> EmbeddingResponse:
        group = self._route(ctx, req.model, None)
        self._require(group.primary, "embeddings")
        t0 = time.perf_counter()
        chars = sum(len(x) if isinstance(x, str) else len(x) * 4 for x in req.input)
        reservation, _ = await self._reserve(ctx, Estimate(estimate_tokens(chars), 0))
        ctx.mark_stage("limits", t0)
        req = await self._checked(ctx, reservation, self.guards.check_embedding_input, req)
        return await self._settled(
            ctx,
            reservation,
            req.model,
            lambda: self.router.call(ctx, group, lambda d: d.provider.embed(req), "embeddings", None),
        )

    # ---- helpers ----------------------------------------------------------------------------------------

    async def _checked(
        self,
        ctx: RequestContext,
        reservation: Reservation,
        check: Callable[[RequestContext, Q], Awaitable[Q]],
        req: Q,
    ) -> Q:
        """Run an input guardrail chain; a refusal settles the reservation and records the request."""
        t0 = time.perf_counter()
        try:
            out = await check(ctx, req)
        except BaseException as exc:
            await reservation.settle(None)
            self._finish(ctx, None, exc)
            raise
        ctx.mark_stage("guard_input", t0)
        return out

    async def _settled(
        self,
        ctx: RequestContext,
        reservation: Reservation,
        model: str,
        fn: Callable[[], Awaitable[R]],
        check: Callable[[RequestContext, R], Awaitable[R]] | None = None,
    ) -> R:
        """Call the provider (through the router), then the output ``check``; settle the reservation and
        record the request exactly once, whatever happens (usage counts even when the check blocks).
        Chat has its own version: the cache and the schema repair retry sit inside it."""
        usage: Usage | None = None
        error: BaseException | None = None
        try:
            resp = await self._call(ctx, fn)
            usage = resp.usage
            if check is not None:
                t0 = time.perf_counter()
                resp = await check(ctx, resp)
                ctx.mark_stage("guard_output", t0)
            resp.model = model
            if isinstance(resp, CompletionResponse):
                ctx.finish_reason = resp.choices[0].finish_reason if resp.choices else None
            return resp
        except BaseException as exc:
            error = exc
            raise
        finally:
            await reservation.settle(usage)
            self._finish(ctx, usage, error)

    @staticmethod
    def _require(dep: Deployment, capability: str) -> None:
        if not getattr(dep.provider.capabilities, capability):
            raise InvalidRequest(
                f"The model '{dep.name}' does not support {capability}.",
                param="model",
                code="model_not_supported",
            )

    async def _admit(self, ctx: RequestContext, req: ChatRequest, group: Group) -> tuple[Group, Reservation]:
        self._require(group.primary, "chat")
        t0 = time.perf_counter()
        out = req.max_tokens or group.primary.config.max_output_tokens
        est = Estimate(estimate_tokens(_message_chars(req.messages)), out)
        r, new = await self._reserve(ctx, est, lambda m: self._route(ctx, m, req.max_tokens, req))
        ctx.mark_stage("limits", t0)
        return new or group, r

    async def _admit_text(
        self, ctx: RequestContext, req: CompletionRequest, group: Group
    ) -> tuple[Group, Reservation]:
        t0 = time.perf_counter()
        out = req.max_tokens or group.primary.config.max_output_tokens
        est = Estimate(estimate_tokens(len(req.prompt)), out)
        r, new = await self._reserve(ctx, est, lambda m: self._route(ctx, m, req.max_tokens, req))
        ctx.mark_stage("limits", t0)
        return new or group, r

    async def _reserve(
        self, ctx: RequestContext, estimate: Estimate, reroute: Callable[[str], Group] | None = None
    ) -> tuple[Reservation, Group | None]:
        """Admission; a refused request (rate limit, budget, model not allowed) still gets its ledger
        record. A budget policy may ask for a cheaper model (``Downgrade``): re-route and admit again."""
        try:
            try:
                return await self.limiter.admit(ctx, estimate), None
            except Downgrade as d:
                if reroute is None:
                    raise
                group = reroute(d.model)
                ctx.route = f"{d.reason}-downgrade:{d.model}"
                return await self.limiter.admit(ctx, estimate), group
        except BaseException as exc:
            self._finish(ctx, None, exc)
            raise

    async def _open(
        self, ctx: RequestContext, group: Group, opener: Opener[C], capability: str, max_tokens: int | None
    ) -> StreamStart[C]:
        t0 = time.perf_counter()
        try:
            start = await self.router.open_stream(ctx, group, opener, capability, max_tokens)
        finally:
            ctx.upstream_seconds += time.perf_counter() - t0
        ctx.ttft_seconds = time.perf_counter() - ctx.started
        return start

    async def _rest(
        self,
        ctx: RequestContext,
        start: StreamStart[C],
        reservation: Reservation,
        include_usage: bool,
        *,
        cached: bool = False,
        store: tuple[ChatRequest, Assembler] | None = None,
    ) -> AsyncIterator[C]:
        """Relay an opened stream: the chunks read while routing, then the rest (each gap bounded by the
        deployment's ``stream_idle_s``); record usage, and always settle and record in ``finally``.
        ``cached``: a replayed cache hit (its usage was not spent now). ``store``: assemble the answer and
        offer it to the cache once the stream has ended well."""
        usage: Usage | None = None
        error: BaseException | None = None
        upstream = start.upstream
        pending = start.chunks
        idle = start.lease.idle_s if start.lease is not None else None
        i = 0
        try:
            while True:
                if i < len(pending):
                    chunk = pending[i]
                    i += 1
                else:
                    t0 = time.perf_counter()
                    try:
                        if idle is None:
                            chunk = await upstream.__anext__()
                        else:
                            chunk = await _next_within(upstream, idle)
                    except StopAsyncIteration:
                        break
                    finally:
                        ctx.upstream_seconds += time.perf_counter() - t0
                if store is not None:
                    store[1].feed(chunk)  # type: ignore[arg-type]  # only chat streams are stored
                if chunk.usage is not None:
                    if not cached:
                        usage = chunk.usage
                    if not include_usage:
                        chunk.usage = None
                for ch in chunk.choices:
                    if ch.finish_reason is not None:
                        ctx.finish_reason = ch.finish_reason
                if chunk.choices or chunk.usage is not None:
                    yield chunk
            if store is not None:
                resp = store[1].build()
                if resp is not None:
                    await self.cache.store(ctx, store[0], resp)
        except BaseException as exc:
            error = exc
            raise
        finally:
            await aclose_all(upstream, start.raw)
            if start.lease is not None:
                start.lease.finish(error)
            await reservation.settle(usage)
            self._finish(ctx, usage, error)


async def _next_within(upstream: AsyncIterator[C], idle_s: float) -> C:
    try:
        async with asyncio.timeout(idle_s):
            return await upstream.__anext__()
    except TimeoutError:
        raise UpstreamTimeout(f"the upstream stream was idle for more than {idle_s:g} s") from None


async def _iterate(chunks: list[ChatChunk]) -> AsyncIterator[ChatChunk]:
    for chunk in chunks:
        yield chunk


def _is_cancel(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.CancelledError | GeneratorExit)
