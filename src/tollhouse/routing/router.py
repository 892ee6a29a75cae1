"""Routing stage: model name → group of deployments → one provider call that survives failures.

Each attempt picks a deployment by the group's strategy (skipping open circuits and full deployments);
retry-safe failures go to another member at once, or to the same one after a jittered backoff; when the
group is exhausted, the group's fallback chain for that error class takes over. Every attempt shares the
request deadline. Streams are routed until their first content chunk; after that they are committed to
the deployment (a later failure ends the stream with an error event) and bounded by its ``total_s`` and
idle limit (``stream_timeouts.py``). Nothing here awaits when nothing fails (ADR 0004).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from tollhouse.errors import (
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    TollhouseError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tollhouse.providers.registry import Deployment, ModelRegistry
from tollhouse.routing.auto import AutoRouter
from tollhouse.routing.breaker import DENY, PROBE, CircuitBreaker, State
from tollhouse.routing.group import Group, Selector, reachable
from tollhouse.routing.retry import HEALTH_FAILURES, RETRY_SAFE, Backoff, classify
from tollhouse.routing.strategies import Picker, Target
from tollhouse.routing.stream_timeouts import StreamTimeouts
from tollhouse.routing.streams import aclose_all, has_content
from tollhouse.settings import ErrorClass, RoutingSettings
from tollhouse.types import ChatRequest, CompletionRequest, RequestContext

log = logging.getLogger("tollhouse.routing")

T = TypeVar("T")
C = TypeVar("C")


class ProbeClaims(Protocol):
    """Cross-process half-open probe limit and state publishing (``routing/shared.py``)."""

    async def claim_probe(self, name: str) -> bool: ...

    def publish(self, breaker: CircuitBreaker, state: State) -> None: ...

    async def aclose(self) -> None: ...


class Lease:
    """A routed stream's hold on its deployment, released when the stream ends."""

    __slots__ = ("_router", "permit", "target")

    def __init__(self, router: Router, target: Target, permit: int) -> None:
        self._router = router
        self.target = target
        self.permit = permit

    def finish(self, error: BaseException | None) -> None:
        """Settle the deployment's in-flight count and circuit with the stream's outcome."""
        self.target.in_flight -= 1
        self._router.settle(self.target, self.permit, error)


@dataclass(slots=True)
class StreamStart(Generic[C]):
    """An opened stream: chunks up to and including the first with content, the rest still upstream.
    A routed stream has a ``lease`` and its ``timeouts`` (counted from ``started``, when its attempt
    began); a replayed one has neither."""

    chunks: list[C]
    upstream: AsyncIterator[C]
    raw: AsyncIterator[C] | None
    lease: Lease | None = None
    started: float = 0.0
    timeouts: StreamTimeouts | None = None


Opener = Callable[[Deployment], tuple[AsyncIterator[C], AsyncIterator[C] | None]]


class Router:
    """Built once per process from the registry and ``routing:`` settings. ``clock`` (monotonic seconds),
    ``sleep`` and ``rng`` are injectable so tests are deterministic."""

    def __init__(
        self,
        registry: ModelRegistry,
        cfg: RoutingSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = cfg = cfg or RoutingSettings()
        self.registry = registry
        self.clock = clock
        self._sleep = sleep
        self.rng = rng or random.Random(cfg.seed)
        self._backoff = Backoff(cfg.retry, self.rng)
        self._breakers_on = cfg.breaker.enabled
        self.shared: ProbeClaims | None = None
        self.targets: dict[str, Target] = {}
        self._groups: dict[str, Group] = {}
        self._reach: dict[tuple[int, str, str | None], tuple[tuple[Deployment, ...], int]] = {}
        for dep in registry.all():
            target = Target(dep, CircuitBreaker(dep.name, cfg.breaker, self._on_transition))
            self.targets[dep.name] = target
            group = Group(dep.name, Picker([target], "priority"))
            for n in [dep.name, *dep.config.aliases]:
                self._groups[n] = group
        for g in cfg.groups:
            members = {m.model: self.targets[registry.get(m.model).name] for m in g.deployments}
            rules = [(frozenset(r.when), list(r.to)) for r in g.fallbacks]
            self._groups[g.name] = Group(g.name, Picker.for_group(g, members), rules)
        for a in cfg.auto:
            auto = AutoRouter(a, self._groups)
            self._groups[a.name] = Group(a.name, auto.tier_groups[0].picker, auto=auto)

    # ---- resolution ---------------------------------------------------------------------------------

    def resolve(self, ctx: RequestContext, req: ChatRequest | CompletionRequest | None, model: str) -> Group:
        """The group for ``model`` (an automatic router classifies ``req`` and picks a tier's group)."""
        group = self._groups.get(model)
        if group is None:
            raise ModelNotFound(
                f"The model '{model}' does not exist or you do not have access to it.", param="model"
            )
        if group.auto is not None:
            return group.auto.select(ctx, req)
        return group

    def group(self, name: str) -> Group | None:
        return self._groups.get(name)

    def public_groups(self) -> list[tuple[str, Deployment]]:
        """Configured group and automatic-router names with their first deployment (for ``/v1/models``)."""
        names = [g.name for g in self.cfg.groups] + [a.name for a in self.cfg.auto]
        return [(n, self._groups[n].primary) for n in names]

    def cascading(self, model: str) -> Selector | None:
        """The automatic router behind ``model`` when it cascades (non-streaming chat only)."""
        group = self._groups.get(model)
        auto = group.auto if group is not None else None
        return auto if auto is not None and auto.cfg.cascade else None

    def reachable(
        self, group: Group, capability: str, cascade: str | None = None
    ) -> tuple[tuple[Deployment, ...], int]:
        """The deployments a request routed to ``group`` may end on (``group.reachable``), with ``cascade``
        (the requested name of a non-streamed chat) the higher tiers an automatic router may escalate to,
        and how many calls may be paid for one after another (the tiers, else 1). Cached per route."""
        key = (id(group), capability, cascade)
        hit = self._reach.get(key)
        if hit is None:
            tiers = [group]
            auto = self.cascading(cascade) if cascade is not None else None
            while auto is not None and (nxt := auto.escalation(tiers[-1])) is not None:
                if any(nxt is t for t in tiers):
                    break  # two tiers served by one group
                tiers.append(nxt)
            hit = self._reach[key] = (reachable(tiers, self._groups, capability), len(tiers))
        return hit

    def circuits(self) -> dict[str, dict[str, Any]]:
        """Circuit state per deployment, for ``/health/ready``."""
        now = self.clock()
        return {name: t.breaker.snapshot(now) for name, t in self.targets.items()}

    # ---- calls --------------------------------------------------------------------------------------

    async def call(
        self,
        ctx: RequestContext,
        group: Group,
        op: Callable[[Deployment], Awaitable[T]],
        capability: str,
        max_tokens: int | None,
    ) -> T:
        """Run ``op`` against deployments of ``group`` until one succeeds (see the module docstring)."""

        async def attempt(target: Target, limit_s: float) -> T:
            try:
                async with asyncio.timeout(limit_s):
                    return await op(target.dep)
            except TimeoutError:
                raise UpstreamTimeout(
                    f"upstream {target.name!r} did not answer within {limit_s:.3g} s"
                ) from None

        result, _, _ = await self._run(ctx, group, attempt, capability, max_tokens, keep=False)
        return result

    async def open_stream(
        self, ctx: RequestContext, group: Group, opener: Opener[C], capability: str, max_tokens: int | None
    ) -> StreamStart[C]:
        """Open a stream and read it up to its first content chunk, failing over until then. The returned
        ``lease`` must be finished and its ``timeouts`` closed when the stream ends."""

        async def attempt(target: Target, limit_s: float) -> StreamStart[C]:
            started = time.perf_counter()
            upstream, raw = opener(target.dep)
            chunks: list[C] = []
            try:
                async with asyncio.timeout(limit_s):
                    while True:
                        try:
                            chunk = await upstream.__anext__()
                        except StopAsyncIteration:
                            break
                        chunks.append(chunk)
                        if has_content(chunk):
                            break
            except TimeoutError:
                await aclose_all(upstream, raw)
                raise UpstreamTimeout(
                    f"upstream {target.name!r} sent no first token within {limit_s:.3g} s"
                ) from None
            except BaseException:
                await aclose_all(upstream, raw)
                raise
            return StreamStart(chunks, upstream, raw, started=started)

        start, target, permit = await self._run(ctx, group, attempt, capability, max_tokens, keep=True)
        start.lease = Lease(self, target, permit)
        limits = target.timeouts
        # The gateway bounds the rest of the stream itself: not every provider's client does.
        idle_s = limits.stream_idle_s or limits.read_s
        start.timeouts = StreamTimeouts(start.started + limits.total_s, idle_s, limits.total_s)
        return start

    # ---- the attempt loop -----------------------------------------------------------------------------

    async def _run(
        self,
        ctx: RequestContext,
        group: Group,
        attempt: Callable[[Target, float], Awaitable[T]],
        capability: str,
        max_tokens: int | None,
        *,
        keep: bool,
    ) -> tuple[T, Target, int]:
        deadline = ctx.started + self.cfg.request_timeout_s
        retry_cfg = self.cfg.retry
        current = group
        visited: list[str] | None = None
        tried: list[Target] | None = None
        retries = same_retries = 0
        retry_ok = exhausted = False
        last: TollhouseError | None = None
        last_cls: ErrorClass | None = None
        while True:
            now = self.clock()
            target = None
            if not exhausted:
                target = current.picker.pick(now, self.rng, capability, max_tokens, tried)
                if target is None and retry_ok and last_cls != "overloaded":
                    # Every member failed once: retry the best one again, after a backoff.
                    target = current.picker.pick(now, self.rng, capability, max_tokens, None)
                    delay = self._backoff.delay(same_retries, last) if target is not None else None
                    if delay is None or time.perf_counter() + delay >= deadline:
                        target = None
                    else:
                        same_retries += 1
                        await self._sleep(delay)
                        now = self.clock()
            if target is None:
                if last is None:
                    last, last_cls = self._unavailable(current, now, capability, max_tokens)
                nxt = self._fallback(group, current, last_cls, visited)
                if nxt is None or ctx.attempts >= retry_cfg.max_attempts:
                    raise last
                visited = [*(visited or [current.name]), nxt.name]
                current, tried = nxt, None
                retries = same_retries = 0
                retry_ok = exhausted = False
                ctx.fallbacks += 1
                continue
            permit = target.breaker.allow(now)
            if permit == PROBE and self.shared is not None and not await self.shared.claim_probe(target.name):
                target.breaker.release(PROBE)
                permit = DENY  # another process holds the probe
            if permit == DENY:
                tried = [*(tried or []), target]
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                target.breaker.release(permit)
                raise last or UpstreamTimeout(f"request deadline of {self.cfg.request_timeout_s} s passed")
            limits = target.timeouts
            timeout = (limits.ttft_s or limits.total_s) if keep else limits.total_s
            ctx.attempts += 1
            ctx.deployment = target.name
            target.in_flight += 1
            t0 = time.perf_counter()
            # Tracing on: one CLIENT span per attempt, whose context goes to this upstream.
            span = ctx.tracer.provider_call(ctx, target.name) if ctx.tracer is not None else None
            try:
                result = await attempt(target, min(timeout, remaining))
            except TollhouseError as exc:
                if span is not None:
                    span.end(exc)
                target.in_flight -= 1
                cls = classify(exc)
                self.settle(target, permit, exc, cls)
                if cls is None or ctx.attempts >= retry_cfg.max_attempts:
                    raise
                last, last_cls = exc, cls
                ctx.note_failure(target.name, cls)
                tried = [*(tried or []), target]
                retry_ok = cls in RETRY_SAFE and retries < retry_cfg.max_retries
                if retry_ok:
                    retries += 1
                else:
                    exhausted = True  # a retry here would not help: straight to the fallbacks
                continue
            except BaseException as exc:
                if span is not None:
                    span.end(exc)
                target.in_flight -= 1
                target.breaker.release(permit)
                raise
            target.observe_latency(time.perf_counter() - t0)
            if span is not None:
                if keep:
                    span.first_token()  # a stream attempt succeeds at its first content chunk
                span.end(None)
            if not keep:
                target.in_flight -= 1
                target.breaker.success(permit, self.clock())
            ctx.model_served = target.dep.config.upstream_model
            return result, target, permit

    def settle(
        self, target: Target, permit: int, error: BaseException | None, cls: ErrorClass | None = None
    ) -> None:
        """Feed one outcome into the deployment's circuit."""
        breaker = target.breaker
        if error is None:
            breaker.success(permit, self.clock())
            return
        if cls is None and isinstance(error, TollhouseError):
            cls = classify(error)
        counted = cls in HEALTH_FAILURES or (cls == "rate_limit" and self.cfg.breaker.count_rate_limits)
        if counted and self._breakers_on:
            breaker.failure(permit, self.clock())
        else:
            breaker.release(permit)

    def _unavailable(
        self, group: Group, now: float, capability: str, max_tokens: int | None
    ) -> tuple[TollhouseError, ErrorClass]:
        """Why no member of ``group`` could be tried at all."""
        ts = [t for t in group.picker.targets if t.can_serve(capability, max_tokens)]
        if not ts:
            return InvalidRequest(
                f"No deployment of '{group.name}' supports this request ({capability}, max_tokens).",
                param="model",
            ), "server_error"
        open_for = [t.breaker.open_until - now for t in ts if not t.breaker.available(now)]
        if len(open_for) == len(ts):
            return UpstreamUnavailable(
                f"every deployment of '{group.name}' is failing (circuit open); try again shortly",
                status=503,
                retry_after=max(0.0, min(open_for)),
            ), "server_error"
        return Overloaded(
            f"every deployment of '{group.name}' is at its concurrency limit", retry_after=1.0
        ), "overloaded"

    def _fallback(
        self, requested: Group, current: Group, cls: ErrorClass | None, visited: list[str] | None
    ) -> Group | None:
        """The next group in the requested group's (then the current group's) chain for ``cls``."""
        if cls is None:
            return None
        seen = visited or [current.name]
        for g in (requested, current):
            for on, names in g.fallbacks:
                if cls in on:
                    for n in names:
                        if n not in seen and n in self._groups:
                            nxt = self._groups[n]
                            return nxt.auto.tier_groups[-1] if nxt.auto is not None else nxt
        return None

    # ---- circuit transitions ---------------------------------------------------------------------------

    def _on_transition(self, breaker: CircuitBreaker, state: State) -> None:
        level = logging.WARNING if state == "open" else logging.INFO
        log.log(level, "circuit %s", state, extra={"deployment": breaker.name, "circuit": state})
        if self.shared is not None:
            self.shared.publish(breaker, state)

    async def aclose(self) -> None:
        if self.shared is not None:
            await self.shared.aclose()
