"""The Gateway: runs every operation (``operations.py``) through the stage sequence, written once here.

    prompt → tools plan → resolve → admission (limits / budgets) → input guardrails → cache lookup
            → route + provider (⇄ gateway tools, ``tools/``) → output guardrails → cache store → settle
            → ledger

``handle`` answers a request whole; ``handle_stream`` opens the stream (failing over until its first content
chunk) and returns the relay, which does the post-response stages as chunks flow and in its ``finally``, so a
client that disconnects still has its usage settled and recorded and its upstream call closed. A cancelled
request is recorded as a 499 (its client left) or, once the server drains, a 503 (cut at shutdown).
Authentication happens before (``authenticate``: the route needs the principal to parse some bodies).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import orjson

from tollhouse.caching.entry import Assembler
from tollhouse.errors import (
    Downgrade,
    InvalidRequest,
    ResponseSchemaMismatch,
    TollhouseError,
)
from tollhouse.operations import C, Operation, Prompting, Q, R, Retrieving
from tollhouse.pipeline.admission import Limiter, Unlimited
from tollhouse.pipeline.auth import Authenticator, OpenAccess
from tollhouse.pipeline.cache import NoCache, ResponseCache
from tollhouse.pipeline.guard import GuardChain, NoGuards
from tollhouse.pipeline.ledger import Ledger, NoLedger
from tollhouse.pipeline.prompts import NoPrompts, PromptSource
from tollhouse.pipeline.retrieval import NoRetrieval, Retriever
from tollhouse.pipeline.tools import NoTools, ToolRunner
from tollhouse.providers.registry import Deployment, ModelRegistry
from tollhouse.routing.group import Group
from tollhouse.routing.router import Router, StreamStart
from tollhouse.routing.streams import aclose_all
from tollhouse.tokens import TokenCounters
from tollhouse.types import (
    ChatRequest,
    ChatResponse,
    Estimate,
    Principal,
    RenderedPrompt,
    RequestContext,
    Reservation,
    Usage,
)

T = TypeVar("T")


@dataclass(slots=True)
class Gateway:
    """Holds the stages and the registry. Stages default to pass-through implementations; whoever built
    the stages (the runtime) closes them."""

    registry: ModelRegistry
    auth: Authenticator = field(default_factory=OpenAccess)
    limiter: Limiter = field(default_factory=Unlimited)
    guards: GuardChain = field(default_factory=NoGuards)
    cache: ResponseCache = field(default_factory=NoCache)
    ledger: Ledger = field(default_factory=NoLedger)
    prompts: PromptSource = field(default_factory=NoPrompts)
    tools: ToolRunner = field(default_factory=NoTools)
    retrieval: Retriever = field(default_factory=NoRetrieval)
    router: Router = None  # type: ignore[assignment]  # built from the registry when not given
    # Set when the server begins to shut down: a request cancelled from then on, whose client is still
    # there, was cut at the end of the grace period (503), not abandoned by its client (499).
    draining: bool = False
    tokens: TokenCounters = field(default_factory=TokenCounters)  # prompt counters per deployment

    def __post_init__(self) -> None:
        if self.router is None:
            self.router = Router(self.registry)

    async def authenticate(self, ctx: RequestContext, credential: str | None) -> None:
        t0 = time.perf_counter()
        ctx.principal = await self.auth.authenticate(ctx, credential)
        ctx.mark_stage("auth", t0)

    async def admit_request(self, ctx: RequestContext) -> None:
        """The key's request rate for a request the pipeline does not run (``/v1/collections``): a 429 like
        any other request of the key once it is used up."""
        admit_request = getattr(self.limiter, "admit_request", None)
        if admit_request is not None:
            t0 = time.perf_counter()
            await admit_request(ctx)
            ctx.mark_stage("limits", t0)

    def refused(self, ctx: RequestContext, error: BaseException) -> None:
        """Record a request that failed before the pipeline recorded it: a bad key (401), a malformed
        body, an unknown model or an invalid parameter. No-op when it is already recorded."""
        self._finish(ctx, None, error)

    async def local(self, ctx: RequestContext, model: str, estimate: Estimate, work: Callable[[], T]) -> T:
        """A request the gateway answers itself (``/v1/moderations``): the key's limits admit it like any
        request (its model allow-list, request and token rates; no upstream, so no cost), ``work`` runs in a
        worker thread, and the request is settled and recorded exactly once."""
        ctx.model_requested = model
        t0 = time.perf_counter()
        reservation = await self.limiter.admit(ctx, estimate)
        ctx.mark_stage("limits", t0)
        usage = Usage(estimate.prompt_tokens, 0)
        error: BaseException | None = None
        try:
            return await asyncio.to_thread(work)
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                await reservation.settle(usage if error is None else None)
            finally:
                self._finish(ctx, usage if error is None else None, error)

    # ---- the stage sequence ------------------------------------------------------------------------------

    async def handle(self, ctx: RequestContext, op: Operation[Q, R, C], req: Q) -> R:
        """Answer ``req`` whole. Usage is settled and the request recorded exactly once, whatever happens
        (usage counts even when an output guardrail blocks the answer)."""
        if op.prompting is not None:
            req = self._prompt(ctx, op, op.prompting, req)
        if op.retrieving is not None and op.retrieving.spec(req) is not None:
            req = await self._retrieve(ctx, op.retrieving, req)
        return await self._handle(ctx, op, req, self._plan(ctx, op, req))

    async def _handle(
        self,
        ctx: RequestContext,
        op: Operation[Q, R, C],
        req: Q,
        plan: object | None,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> R:
        group, reservation = await self._admit(ctx, op, req, stream=progress is not None, plan=plan)
        usage: Usage | None = None
        error: BaseException | None = None
        try:
            req = await self._check_input(ctx, op, req)
            resp = await self._lookup(ctx, op, req) if plan is None else None
            if resp is None:
                if plan is None:
                    resp = await self._call(ctx, lambda: op.complete(self.router, ctx, group, req))
                else:
                    resp = await self._loop(ctx, op, group, req, plan, progress)
                usage = resp.usage  # spent even if an output guardrail blocks the answer
                t = time.perf_counter()
                try:
                    resp = await self._check_output(ctx, op, resp)
                except ResponseSchemaMismatch as exc:
                    if op.repair is None:
                        raise
                    # One repair retry: the model sees its answer and the validation error, then the
                    # second answer must pass (else the error stands).
                    fix = op.repair(req, resp, exc.message)
                    resp = await self._call(ctx, lambda: op.complete(self.router, ctx, group, fix))
                    usage = resp.usage = Usage(
                        usage.prompt_tokens + resp.usage.prompt_tokens,
                        usage.completion_tokens + resp.usage.completion_tokens,
                    )
                    resp = await self._check_output(ctx, op, resp)
                if op.check_output is not None:
                    t = ctx.mark_stage("guard_output", t)
                if op.caching is not None and plan is None:  # tool results are not cached
                    await op.caching.store(self.cache, ctx, req, resp)
                    ctx.mark_stage("cache_store", t)
            elif op.check_output is not None:
                t = time.perf_counter()
                resp = await self._check_output(ctx, op, resp)
                ctx.mark_stage("guard_output", t)
            resp.model = req.model
            ctx.finish_reason = op.finish_reason(resp)
            return resp
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                await reservation.settle(usage)
            finally:  # recorded even if the settlement is cancelled in turn
                self._finish(ctx, usage, error)

    async def handle_stream(self, ctx: RequestContext, op: Operation[Q, R, C], req: Q) -> AsyncIterator[C]:
        """Admit, route and open the upstream stream, waiting for its first content chunk so that failures
        before any content fail over or surface as ordinary HTTP errors. Returns the stream to relay."""
        if op.prompting is not None:
            req = self._prompt(ctx, op, op.prompting, req)
        if op.retrieving is not None and op.retrieving.spec(req) is not None:
            req = await self._retrieve(ctx, op.retrieving, req)
        plan = self._plan(ctx, op, req)
        if plan is not None:
            return await self._tool_stream(ctx, op, req, plan)
        group, reservation = await self._admit(ctx, op, req, stream=True)
        include_usage = op.include_usage(req)
        try:
            req = await self._check_input(ctx, op, req)
            cached = await self._lookup(ctx, op, req)
            if cached is not None and op.caching is not None:
                cached.model = req.model
                replay = op.caching.replay(cached, include_usage)
                ctx.ttft_seconds = time.perf_counter() - ctx.started
                start = StreamStart([], op.guard_stream(self.guards, ctx, replay), replay)
                return self._relay(ctx, start, reservation, include_usage, cached=True)

            def opener(dep: Deployment) -> tuple[AsyncIterator[C], AsyncIterator[C]]:
                # Wrappers (guardrails) don't close what they wrap when closed early, so the gateway
                # closes the provider's stream itself: that is what cancels the upstream call.
                raw = op.open(dep.provider, req)
                return op.guard_stream(self.guards, ctx, raw), raw

            t0 = time.perf_counter()
            try:
                start = await self.router.open_stream(ctx, group, opener, op.capability, op.max_tokens(req))
            finally:
                ctx.upstream_seconds += time.perf_counter() - t0
            ctx.ttft_seconds = time.perf_counter() - ctx.started
        except BaseException as exc:
            try:
                await reservation.settle(None)
            finally:
                self._finish(ctx, None, exc)
            raise
        store: Callable[[R], Awaitable[None]] | None = None
        assembler: Assembler | None = None
        if op.caching is not None and ctx.cache_plan is not None:
            caching, request = op.caching, req
            assembler = caching.assembler()

            def store(resp: R) -> Awaitable[None]:
                return caching.store(self.cache, ctx, request, resp)

        return self._relay(ctx, start, reservation, include_usage, store=store, assembler=assembler)

    # ---- stages --------------------------------------------------------------------------------------------

    def _prompt(self, ctx: RequestContext, op: Operation[Q, R, C], prompting: Prompting[Q], req: Q) -> Q:
        """Render the stored prompt the request names (if any) into it; start its shadow run, if sampled."""
        ref = prompting.ref(req)
        if ref is None:
            return req
        t0 = time.perf_counter()
        try:
            rendered = self.prompts.render(ctx, ref, prompting.user(req))
            out = prompting.apply(req, rendered)
            shadow = (
                None if rendered.shadow is None else prompting.quiet(prompting.apply(req, rendered.shadow))
            )
        except BaseException as exc:
            self._finish(ctx, None, exc)
            raise
        ctx.mark_stage("prompt", t0)
        if shadow is not None and rendered.shadow is not None:
            self.prompts.detach(self._shadow(ctx, op, shadow, rendered.shadow))
        return out

    async def _retrieve(self, ctx: RequestContext, retrieving: Retrieving[Q], req: Q) -> Q:
        """Retrieve the chunks the request asks for and inject them (before admission, so limits and
        budgets count the tokens they add; before the guardrails, which read them as documents)."""
        t0 = time.perf_counter()
        try:
            got = await self.retrieval.retrieve(
                ctx, retrieving.spec(req), retrieving.query(req), getattr(req, "model", "")
            )
            ctx.retrieval = got
            out = retrieving.inject(req, got)
        except BaseException as exc:
            self._finish(ctx, None, exc)
            raise
        ctx.mark_stage("retrieval", t0)
        return out

    async def _shadow(
        self, parent: RequestContext, op: Operation[Q, R, C], req: Q, prompt: RenderedPrompt
    ) -> None:
        """A candidate version answering the same request in the background: never seen by the caller, not
        admitted against the caller's limits (the registry caps its spend), recorded in the ledger as the
        ``shadow`` endpoint and counted apart in the version's metrics."""
        ctx = RequestContext(f"{parent.request_id}-shadow", parent.ingress, "shadow", principal=Principal())
        ctx.prompt_template, ctx.prompt_version = prompt.id, str(prompt.version)
        usage: Usage | None = None
        error: BaseException | None = None
        try:
            group = self._resolve(ctx, op, req, req.model)
            _require(group.primary, op.capability)
            resp = await self._call(ctx, lambda: op.complete(self.router, ctx, group, req))
            usage = resp.usage
            self.prompts.shadow_answer(parent, ctx, resp)
        except BaseException as exc:
            error = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            self._finish(ctx, usage, error)

    def _resolve(self, ctx: RequestContext, op: Operation[Q, R, C], req: Q, model: str) -> Group:
        """Resolve the model name to its group; validate the request against the group's first deployment
        (routing picks the one that serves it)."""
        t0 = time.perf_counter()
        ctx.model_requested = model
        group = self.router.resolve(ctx, op.route_view(req), model)
        dep = group.primary
        ctx.deployment = dep.name
        ctx.model_served = dep.config.upstream_model
        max_tokens = op.max_tokens(req)
        cap = dep.config.max_output_tokens
        if max_tokens is not None and max_tokens > cap:
            raise InvalidRequest(
                f"max_tokens is too large: {max_tokens}. "
                f"This model supports at most {cap} completion tokens.",
                param="max_tokens",
            )
        if max_tokens is not None and max_tokens < 1:
            raise InvalidRequest("max_tokens must be at least 1.", param="max_tokens")
        n = getattr(req, "n", 1)  # choices; embeddings have none
        if n > dep.config.max_n:
            raise InvalidRequest(
                f"n is too large: {n}. This model returns at most {dep.config.max_n} choices per request.",
                param="n",
            )
        ctx.mark_stage("route", t0)
        return group

    async def _admit(
        self,
        ctx: RequestContext,
        op: Operation[Q, R, C],
        req: Q,
        *,
        stream: bool = False,
        plan: object | None = None,
    ) -> tuple[Group, Reservation]:
        """Resolve, check the capability, and reserve against limits and budgets — budgets at the worst case
        over every deployment the request may reach (fallbacks, a cascade's tiers). A refused request (rate
        limit, budget, model not allowed) still gets its ledger record. A budget policy may ask for a
        cheaper model (``Downgrade``): re-route and admit again, estimated for that route."""
        group = self._resolve(ctx, op, req, req.model)
        ctx.stream = stream
        _require(group.primary, op.capability)
        t0 = time.perf_counter()
        # A tool loop's model calls are whole (never streamed), so they may cascade even in a stream.
        cascade = req.model if op.capability == "chat" and (not stream or plan is not None) else None
        try:
            try:
                deps, calls = self.router.reachable(group, op.capability, cascade)
                estimate = op.estimate(req, self.tokens.reach(deps, calls))
                if plan is not None:  # the whole tool loop, reserved at its worst case
                    estimate = self.tools.estimate(plan, estimate)
                reservation = await self.limiter.admit(ctx, estimate)
            except Downgrade as d:
                if not op.downgradable:
                    raise
                group = self._resolve(ctx, op, req, d.model)
                ctx.route = f"{d.reason}-downgrade:{d.model}"
                deps, calls = self.router.reachable(group, op.capability, cascade)
                estimate = op.estimate(req, self.tokens.reach(deps, calls))
                if plan is not None:
                    estimate = self.tools.estimate(plan, estimate)
                reservation = await self.limiter.admit(ctx, estimate)
        except BaseException as exc:
            self._finish(ctx, None, exc)
            raise
        ctx.mark_stage("limits", t0)
        return group, reservation

    def _plan(self, ctx: RequestContext, op: Operation[Q, R, C], req: Q) -> object | None:
        """The gateway tools a chat request uses (None: none, the usual case — one test)."""
        if op.capability != "chat" or op.caching is None:
            return None
        try:
            return self.tools.plan(ctx, cast(ChatRequest, req))
        except BaseException as exc:
            self._finish(ctx, None, exc)
            raise

    async def _loop(
        self,
        ctx: RequestContext,
        op: Operation[Q, R, C],
        group: Group,
        req: Q,
        plan: object,
        progress: Callable[[dict[str, Any]], None] | None,
    ) -> R:
        """The model ⇄ tools loop (only chat has a plan, so ``Q`` / ``R`` are chat's types here)."""

        def call(r: ChatRequest) -> Awaitable[ChatResponse]:
            return self._call(ctx, lambda: op.complete(self.router, ctx, group, cast(Q, r)))  # type: ignore[arg-type,return-value]

        resp = await self.tools.run(
            ctx, plan, cast(ChatRequest, req), call, self.guards, self.ledger, progress
        )
        return cast(R, resp)

    async def _tool_stream(
        self, ctx: RequestContext, op: Operation[Q, R, C], req: Q, plan: object
    ) -> AsyncIterator[C]:
        """A streamed request that uses gateway tools: the loop runs whole (its model calls unstreamed), a
        progress comment goes out as each tool call ends, then the final answer is replayed as chunks. An
        error before the first event is an ordinary HTTP error; later ones end the stream with an error
        event."""
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        task = asyncio.ensure_future(self._handle(ctx, op, req, plan, events.put_nowait))
        waiter = asyncio.ensure_future(events.get())
        try:
            await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
        if task.done() and not waiter.done():
            task.result()  # raises what the loop raised
        first = waiter.result() if waiter.done() and not waiter.cancelled() else None
        return self._tool_relay(ctx, op, req, task, events, first)

    async def _tool_relay(
        self,
        ctx: RequestContext,
        op: Operation[Q, R, C],
        req: Q,
        task: asyncio.Future[R],
        events: asyncio.Queue[dict[str, Any]],
        first: dict[str, Any] | None,
    ) -> AsyncIterator[C]:
        try:
            if first is not None:
                yield _progress(first)  # type: ignore[misc]  # rendered as an SSE comment
            while not task.done():
                waiter = asyncio.ensure_future(events.get())
                await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
                if waiter.done():
                    yield _progress(waiter.result())  # type: ignore[misc]
                else:
                    waiter.cancel()
            while not events.empty():
                yield _progress(events.get_nowait())  # type: ignore[misc]
            resp = task.result()
            assert op.caching is not None
            ctx.ttft_seconds = time.perf_counter() - ctx.started
            async for chunk in op.caching.replay(resp, op.include_usage(req)):
                yield chunk
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _check_input(self, ctx: RequestContext, op: Operation[Q, R, C], req: Q) -> Q:
        t0 = time.perf_counter()
        out = await op.check_input(self.guards, ctx, req)
        ctx.mark_stage("guard_input", t0)
        return out

    async def _check_output(self, ctx: RequestContext, op: Operation[Q, R, C], resp: R) -> R:
        return resp if op.check_output is None else await op.check_output(self.guards, ctx, resp)

    async def _lookup(self, ctx: RequestContext, op: Operation[Q, R, C], req: Q) -> R | None:
        if op.caching is None or type(self.cache) is NoCache:  # cache off: no stage, no timing entry
            return None
        t0 = time.perf_counter()
        resp = await op.caching.lookup(self.cache, ctx, req)
        ctx.mark_stage("cache_lookup", t0)
        return resp

    async def _call(self, ctx: RequestContext, fn: Callable[[], Awaitable[T]]) -> T:
        t0 = time.perf_counter()
        try:
            return await fn()
        finally:
            ctx.upstream_seconds += time.perf_counter() - t0

    def _finish(self, ctx: RequestContext, usage: Usage | None, error: BaseException | None) -> None:
        if ctx.recorded:
            return
        ctx.recorded = True
        ctx.usage = usage
        if isinstance(error, TollhouseError):
            ctx.status, ctx.error_type = error.status, error.type
        elif error is not None:
            ctx.status, ctx.error_type = self._status_of(ctx, error), type(error).__name__
        if error is not None:
            ctx.error_class = type(error).__name__
        t0 = time.perf_counter()
        self.ledger.record(ctx)
        if ctx.prompt_template is not None:
            self.prompts.observe(ctx)
        ctx.mark_stage("ledger", t0)

    def _status_of(self, ctx: RequestContext, error: BaseException) -> int:
        if not _is_cancel(error):
            return 500
        return 503 if self.draining and not ctx.client_gone else 499

    async def _relay(
        self,
        ctx: RequestContext,
        start: StreamStart[C],
        reservation: Reservation,
        include_usage: bool,
        *,
        cached: bool = False,
        store: Callable[[R], Awaitable[None]] | None = None,
        assembler: Assembler | None = None,
    ) -> AsyncIterator[C]:
        """Relay an opened stream: the chunks read while routing, then the rest (bounded by the stream's
        ``timeouts``); record usage, and always settle and record in ``finally``.
        ``cached``: a replayed cache hit (its usage was not spent now). ``store`` + ``assembler``: assemble
        the answer and offer it to the cache once the stream has ended well."""
        usage: Usage | None = None
        error: BaseException | None = None
        upstream = start.upstream
        pending = start.chunks
        timeouts = start.timeouts
        i = 0
        try:
            while True:
                if i < len(pending):
                    chunk = pending[i]
                    i += 1
                else:
                    t0 = time.perf_counter()
                    try:
                        if timeouts is None:
                            chunk = await upstream.__anext__()
                        else:
                            chunk = await timeouts.next(upstream)
                    except StopAsyncIteration:
                        break
                    finally:
                        ctx.upstream_seconds += time.perf_counter() - t0
                if assembler is not None:
                    assembler.feed(chunk)  # type: ignore[arg-type]  # only chat streams are cached
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
            if store is not None and assembler is not None:
                resp = assembler.build()
                if resp is not None:
                    await store(resp)  # type: ignore[arg-type]  # the assembler builds the cached type
        except BaseException as exc:
            error = exc
            raise
        finally:
            # Nested so that a cancellation arriving while one step awaits skips none of the next.
            if timeouts is not None:
                timeouts.close()
            try:
                await aclose_all(upstream, start.raw)
            finally:
                if start.lease is not None:
                    start.lease.finish(error)
                try:
                    await reservation.settle(usage)
                finally:
                    self._finish(ctx, usage, error)


def _require(dep: Deployment, capability: str) -> None:
    if not getattr(dep.provider.capabilities, capability):
        raise InvalidRequest(
            f"The model '{dep.name}' does not support {capability}.",
            param="model",
            code="model_not_supported",
        )


def _progress(event: dict[str, Any]) -> bytes:
    """A tool-progress event as an SSE comment line: every SSE client (the OpenAI SDK too) skips it."""
    return b": tollhouse-tool " + orjson.dumps(event) + b"\n\n"


def _is_cancel(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.CancelledError | GeneratorExit)
