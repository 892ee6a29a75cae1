"""The cache stage: exact lookup, then (mode ``semantic``) the semantic index; store after a complete answer.

Policy per request: ``cache.mode`` / ``access`` / ``ttl_s`` / ``sampled``, replaced by the first matching
override (key id, requested model), then the request's own directives. Never looked up nor stored: requests
whose input guardrails found PII, and requests that sample (temperature above 0 or unset, no seed) unless
opted in. Never stored: errors, blocked, filtered or truncated answers, answers above ``max_entry_bytes``.
A hit's tool calls get fresh ids. A store error is a miss, logged and counted, never a failed request.
Writes run in the background, off the response path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from tollhouse.caching.entry import CachedAnswer, cacheable, fresh_tool_call_ids
from tollhouse.caching.keys import context_hash, exact_key, fold, tenant_scope, user_turns
from tollhouse.caching.stats import CacheStats
from tollhouse.config.cache import CacheAccess, CacheMode, CacheSettings
from tollhouse.errors import StoreUnavailable
from tollhouse.outage import Outage, cause
from tollhouse.pricing import PriceBook
from tollhouse.stores.cache import CacheStore
from tollhouse.types import CachePlan, ChatRequest, ChatResponse, RequestContext, new_id

if TYPE_CHECKING:
    from tollhouse.caching.semantic import Embedder, SemanticIndex, SemanticScope

log = logging.getLogger("tollhouse.cache")
T = TypeVar("T")


@dataclass(slots=True, frozen=True)
class Policy:
    mode: CacheMode
    access: CacheAccess
    ttl_s: float
    sampled: bool  # requests that sample are cached too


class ResponseCacheStage:
    def __init__(
        self,
        cfg: CacheSettings,
        store: CacheStore,
        prices: PriceBook,
        *,
        index: SemanticIndex | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.cfg = cfg
        self.backend = store
        self.prices = prices
        self.index = index
        self.embedder = embedder
        self.stats = CacheStats()
        # One warning per outage of the answers' store, and of the semantic path (encoder, index, log).
        self.outage = Outage(
            f"exact cache store ({cfg.backend})", log, "lookups miss and answers are not stored"
        )
        self.semantic_outage = Outage("semantic cache", log, "semantic lookups miss")
        self._policies: dict[tuple[str | None, str], Policy] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- policy -------------------------------------------------------------------------------------

    def policy(self, key_id: str | None, model: str) -> Policy:
        found = self._policies.get((key_id, model))
        if found is None:
            cfg = self.cfg
            found = Policy(cfg.mode, cfg.access, cfg.ttl_s, cfg.sampled)
            for o in cfg.overrides:
                if (not o.keys or key_id in o.keys) and (not o.models or model in o.models):
                    sampled = found.sampled if o.sampled is None else o.sampled
                    found = Policy(
                        o.mode or found.mode, o.access or found.access, o.ttl_s or found.ttl_s, sampled
                    )
                    break
            if len(self._policies) < 10_000:
                self._policies[(key_id, model)] = found
        return found

    def _repeatable(self, req: ChatRequest, pol: Policy) -> bool:
        """Whether this request's answer may be served again: it is meant to repeat (temperature 0 or a
        seed), or the policy or the request opts in (``mode: semantic`` does, up to its temperature)."""
        if req.temperature == 0 or req.seed is not None or pol.sampled:
            return True
        control = req.cache
        if control is not None and control.sampled:
            return True
        if pol.mode == "semantic":
            temperature = 1.0 if req.temperature is None else req.temperature
            return temperature <= self.cfg.semantic.max_temperature
        return False

    def _semantic_context(self, req: ChatRequest, ctx: RequestContext) -> str | None:
        """The context hash of a request the semantic index may answer (None: it may not)."""
        sem = self.cfg.semantic
        last = req.messages[-1]
        if self.index is None or last.role != "user" or req.tools or req.n != 1:
            return None
        if user_turns(req) > sem.max_turns:
            return None
        temperature = 1.0 if req.temperature is None else req.temperature
        if temperature > sem.max_temperature:
            return None
        return context_hash(req, ctx.prompt_version)

    # ---- lookup -------------------------------------------------------------------------------------

    async def lookup(self, ctx: RequestContext, req: ChatRequest) -> ChatResponse | None:
        model = ctx.model_requested or req.model
        pol = self.policy(ctx.principal.key_id, model)
        control = req.cache
        if (
            pol.mode == "off"
            or (control is not None and control.no_store)
            or _pii_found(ctx)
            or not self._repeatable(req, pol)
        ):
            self._skip(ctx)
            return None
        tenant = tenant_scope(ctx.principal, self.cfg.scope)
        ttl = pol.ttl_s
        if control is not None and control.ttl_s is not None:
            ttl = min(control.ttl_s, self.cfg.max_ttl_s)
        plan = CachePlan(
            tenant, model, exact_key(tenant, model, req, ctx.prompt_version), ttl, pol.access != "read_only"
        )
        if pol.mode == "semantic":
            plan.context = self._semantic_context(req, ctx)
            if plan.context is not None:
                plan.text = fold(req.messages[-1].text())  # = semantic.query_text
        ctx.cache_plan = plan
        if pol.access == "write_only" or (control is not None and control.no_cache):
            ctx.cache_status = "skip"
            self.stats.skips += 1
            return None
        keys = [plan.key]
        if (
            req.model != model
        ):  # re-routed (emergency / budget downgrade): a repeat of the original still hits
            keys.append(exact_key(tenant, req.model, req, ctx.prompt_version))
        for key in keys:
            answer = await self._get(key, model)
            if answer is not None and _fits(answer, req):
                return self._hit(ctx, answer, "hit", None)
        if plan.context is not None:
            hit = await self._semantic(ctx, req, plan)
            if hit is not None:
                return hit
        ctx.cache_status = "miss"
        self.stats.misses += 1
        return None

    async def _semantic(self, ctx: RequestContext, req: ChatRequest, plan: CachePlan) -> ChatResponse | None:
        assert self.index is not None
        assert self.embedder is not None
        t0 = time.perf_counter()
        try:
            plan.vector = await self.embedder.embed(plan.text)
            found = await self.index.search(_scope(plan), plan.vector, plan.text)
        except Exception as exc:
            self.stats.errors += 1
            self.semantic_outage.failed(exc)
            return None
        finally:
            ctx.mark_stage("cache_semantic", t0)
        self.semantic_outage.ok()
        if found is None:
            return None
        answer = await self._get(found.entry_key, plan.model)
        if answer is None or not _fits(answer, req):
            return None
        if self.cfg.semantic.shadow:
            self.stats.shadow_hits += 1
            log.info(
                "semantic cache shadow hit",
                extra={"request_id": ctx.request_id, "similarity": round(found.similarity, 4)},
            )
            return None
        return self._hit(ctx, answer, "semantic-hit", found.similarity)

    async def _get(self, key: str, model: str) -> CachedAnswer | None:
        try:
            raw = await self.backend.get(key)
        except Exception as exc:
            self.stats.errors += 1
            self.outage.failed(exc)
            return None
        self.outage.ok()
        try:
            return None if raw is None else CachedAnswer.from_bytes(raw, model)
        except Exception as exc:  # an entry this version cannot read: a miss
            self.stats.errors += 1
            log.warning("cache entry unreadable; treated as a miss", extra={"error": type(exc).__name__})
            return None

    def _hit(
        self, ctx: RequestContext, answer: CachedAnswer, status: str, similarity: float | None
    ) -> ChatResponse:
        ctx.cache_status = status
        ctx.cache_similarity = similarity
        saved = self.prices.cost(answer.deployment, answer.response.usage) if answer.deployment else 0.0
        ctx.cache_saved_usd = saved
        if ctx.cache_plan is not None:
            ctx.cache_plan.store = False  # a served answer is not stored again
        self.stats.record_hit(status, saved)
        resp = fresh_tool_call_ids(answer.response)  # ids a client may key state by are never reused
        resp.id = new_id("chatcmpl")
        resp.created = int(time.time())
        return resp

    def _skip(self, ctx: RequestContext) -> None:
        ctx.cache_status = "skip"
        self.stats.skips += 1

    # ---- store --------------------------------------------------------------------------------------

    async def store(self, ctx: RequestContext, req: ChatRequest, resp: ChatResponse) -> None:
        plan = ctx.cache_plan
        if plan is None or not plan.store or ctx.guardrail_blocked or not cacheable(resp):
            return
        cost = self.prices.cost(ctx.deployment, resp.usage) if resp.usage else None
        raw = CachedAnswer.of(resp, ctx.deployment, cost).to_bytes()
        if len(raw) > self.cfg.max_entry_bytes:
            return
        plan.store = False  # once per request
        task = asyncio.get_running_loop().create_task(self._write(plan, raw))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, plan: CachePlan, raw: bytes) -> None:
        try:
            await self.backend.set(plan.key, raw, plan.ttl_s, plan.tenant, plan.model)
        except Exception as exc:
            self.stats.errors += 1
            self.outage.failed(exc, phase="store")
            return
        self.outage.ok()
        self.stats.stores += 1
        try:
            if plan.context is not None and self.index is not None and self.embedder is not None:
                vector = plan.vector if plan.vector is not None else await self.embedder.embed(plan.text)
                await self.index.add(_scope(plan), vector, plan.text, plan.key, time.time() + plan.ttl_s)
        except Exception as exc:
            self.stats.errors += 1
            self.semantic_outage.failed(exc, phase="store")

    # ---- admin --------------------------------------------------------------------------------------

    async def invalidate(self, *, tenant: str | None = None, model: str | None = None) -> int:
        """Drop entries; ``StoreUnavailable`` (a 503, never a silent success) when a store is down."""
        removed: int = await self._admin(self.backend.invalidate(tenant=tenant, model=model))
        if self.index is not None:
            try:
                await self.index.invalidate(tenant=tenant, model=model)
            except Exception as exc:
                self.semantic_outage.failed(exc, phase="invalidate")
                raise StoreUnavailable("semantic cache log", cause(exc)) from exc
        self.stats.invalidations += 1
        return removed

    async def _admin(self, op: Awaitable[T]) -> T:
        try:
            out = await op
        except Exception as exc:
            self.outage.failed(exc, phase="admin")
            raise StoreUnavailable(self.outage.store, cause(exc)) from exc
        self.outage.ok()
        return out

    async def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = self.stats.to_dict()
        out["entries"] = await self._admin(self.backend.entries())
        out["semantic_entries"] = self.index.entries() if self.index is not None else 0
        out["mode"] = self.cfg.mode
        out["backend"] = self.cfg.backend
        return out

    async def start(self) -> None:
        await self.backend.open()
        if self.index is not None:
            await self.index.start()

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.index is not None:
            await self.index.aclose()
        close = getattr(self.embedder, "close", None)
        if close is not None:
            close()
        await self.backend.aclose()


def _scope(plan: CachePlan) -> SemanticScope:
    """The semantic index scope of a plan that has a context hash."""
    from tollhouse.caching.semantic import SemanticScope

    assert plan.context is not None
    return SemanticScope(plan.tenant, plan.model, plan.context)


def _pii_found(ctx: RequestContext) -> bool:
    events = ctx.guardrail_events
    return events is not None and any(rule == "pii" for rule, _ in events)


def _fits(answer: CachedAnswer, req: ChatRequest) -> bool:
    """A stored answer longer than this request allows is not served (semantic hits ignore max_tokens)."""
    cap = req.max_tokens
    return cap is None or answer.response.usage.completion_tokens <= cap
