"""The composition root: every long-lived object, built from the settings in the lifespan, closed in reverse.

``Runtime.open(settings, telemetry)`` opens the parts on one ``AsyncExitStack``: each part's close is pushed
as the part is opened, so a failure half way closes what was already open, and shutdown closes every part
exactly once, newest first. Only here do the pass-through seams (``NoCache``, ``NoGuards``) stand in for a
feature that is off. Routes reach these objects through ``api.deps``, never through ``app.state`` directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tollhouse.access.build import Access
from tollhouse.access.keys import KeyService
from tollhouse.caching.build import build_cache
from tollhouse.caching.stage import ResponseCacheStage
from tollhouse.gateway import Gateway
from tollhouse.guardrails.chain import GuardrailChain
from tollhouse.guardrails.moderator import Moderator
from tollhouse.ledger.reports import Reports
from tollhouse.ledger.usage import CostLedger, UsageLedger
from tollhouse.pipeline.admission import Admission, Limiter
from tollhouse.pipeline.cache import NoCache, ResponseCache
from tollhouse.pipeline.guard import GuardChain, NoGuards
from tollhouse.pipeline.ledger import Ledger
from tollhouse.pipeline.prompts import NoPrompts, PromptSource
from tollhouse.pipeline.retrieval import NoRetrieval, Retriever
from tollhouse.pipeline.tools import NoTools, ToolRunner
from tollhouse.pricing import PriceBook
from tollhouse.prompts.registry import PromptRegistry
from tollhouse.providers.registry import ModelRegistry
from tollhouse.routing.router import Router
from tollhouse.settings import Settings
from tollhouse.stores.base import LedgerStore
from tollhouse.stores.build import (
    breaker_state,
    idempotency_store,
    ledger_store,
    network_stores,
    prompt_counters,
    prompt_store,
)
from tollhouse.stores.idempotency import IdempotencyStore, StoredResponse
from tollhouse.stores.probe import StoreTarget, probe
from tollhouse.telemetry.observer import Telemetry

if TYPE_CHECKING:  # imported when the feature is on (idle memory: docs/PERFORMANCE.md, ADR 0027)
    from tollhouse.rag.service import Retrieval
    from tollhouse.tools.build import Tools

# The idempotency store's types, for the HTTP layer (which never imports ``stores`` itself).
__all__ = ["IdempotencyStore", "Runtime", "StoredResponse"]

log = logging.getLogger("tollhouse.runtime")


@dataclass(slots=True, eq=False)
class Runtime:
    """What the app serves with. Built only by ``open``; the one object on ``app.state``."""

    settings: Settings
    admin_key: str | None  # the admin API's key (``auth.admin_key_env``); None: the admin API is off
    registry: ModelRegistry
    access: Access
    ledger: Ledger
    reports: Reports
    router: Router
    guards: GuardChain
    cache: ResponseCache
    gateway: Gateway
    telemetry: Telemetry
    idempotency: IdempotencyStore
    prompts: PromptRegistry | None = None  # None: stored prompts are off
    tools: Tools | None = None  # None: server-side tools are off
    draining: bool = False  # set when shutdown begins: readiness answers 503 from then on
    stores: tuple[StoreTarget, ...] = ()  # the Redis / PostgreSQL servers the settings use (readiness)
    moderator: Moderator = field(default_factory=Moderator)  # /v1/moderations; weights loaded on first use
    rag: Retrieval | None = None  # None: retrieval is off
    # Where admin API changes are recorded (who, action, target, details): the dashboard's audit log, set by
    # the app once both exist; None records nothing.
    audit: Callable[..., Awaitable[None]] | None = None

    @property
    def keys(self) -> KeyService:
        return self.access.keys

    async def probe_stores(self) -> dict[str, dict[str, object]]:
        """One round trip to each network store, concurrently: status, latency, what uses it."""
        checks = await asyncio.gather(*(probe(t) for t in self.stores))
        return {
            c.target.name: {
                "status": "ok" if c.ok else "down",
                "latency_ms": c.latency_ms,
                "detail": c.detail,
                "required": True,
                "url": c.target.shown,
                "used_by": list(c.target.used_by),
            }
            for c in checks
        }

    @property
    def open_mode(self) -> bool:
        """No admin key and no API key ever created: anyone may call (``tollhouse serve`` then binds to
        loopback only)."""
        return self.admin_key is None and not self.access.auth.configured

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings, telemetry: Telemetry | None = None) -> AsyncIterator[Runtime]:
        """Build, start and yield the runtime; on exit (or a failure while opening) close what was opened,
        in reverse order. ``telemetry`` defaults to one built from the settings."""
        telemetry = telemetry or Telemetry(settings)
        async with AsyncExitStack() as stack:
            parts = _Parts(stack)
            registry = await ModelRegistry.build(settings.all_models())
            parts.own("registry", registry.aclose)
            admin_key = settings.admin_key()
            prices = PriceBook(settings.all_models())

            access = Access.build(settings, admin_key, prices)
            access_parts = AsyncExitStack()
            parts.own("access", access_parts.aclose)
            await access.open(access_parts)

            ledger, ledger_store = _ledger(settings, prices)
            # Budget counters lost with a restarted Redis (or process) are rebuilt from the ledger.
            access.budget.ledger = ledger_store
            if access.emergency is not None:
                access.emergency.ledger = ledger_store
            if isinstance(ledger, UsageLedger):
                await ledger.start()  # owned once started: its close flushes a journal that start opens
                parts.own("ledger", ledger.aclose)

            router = Router(registry, settings.routing)
            parts.own("router", router.aclose)  # closes the shared breakers, when attached
            circuits = breaker_state(settings.routing.breaker, settings.redis)
            if circuits is not None:
                from tollhouse.routing.shared import SharedBreakers

                await SharedBreakers.start(router, circuits)

            guards: GuardChain = NoGuards()
            if settings.guardrails.enabled:
                chain = GuardrailChain(settings.guardrails)
                parts.own("guards", chain.close)
                guards = chain

            stage = build_cache(settings.cache, settings.redis, prices)
            cache: ResponseCache = NoCache()
            if stage is not None:
                parts.own("cache", stage.aclose)  # before start: a half-started cache is closed too
                await stage.start()
                cache = stage

            prompt_registry: PromptRegistry | None = None
            prompts: PromptSource = NoPrompts()
            if settings.prompts.enabled:
                cfg = settings.prompts
                prompt_registry = PromptRegistry(cfg, prompt_store(cfg), prompt_counters(cfg, settings.redis))
                parts.own("prompts", prompt_registry.aclose)
                await prompt_registry.start()
                prompts = prompt_registry

            rag: Retrieval | None = None
            retriever: Retriever = NoRetrieval()
            if settings.rag.enabled:
                from tollhouse.rag.build import build_retrieval, retrieval_stage

                rag = build_retrieval(settings.rag, registry, ledger)  # connects on first use
                parts.own("rag", rag.aclose)
                retriever = retrieval_stage(settings.rag, rag, registry)
            tool_set: Tools | None = None
            runner: ToolRunner = NoTools()
            if settings.tools.enabled:
                from tollhouse.tools.build import Tools
                from tollhouse.tools.retrieve import retrieve_tool

                tool_set = Tools(settings.tools)
                parts.own("tools", tool_set.aclose)
                if rag is not None and settings.tools.retrieve:
                    tool_set.registry.register(retrieve_tool(rag))
                await tool_set.start()
                runner = tool_set.loop

            limiters: list[Limiter] = [*access.limiters]
            gateway = Gateway(
                registry=registry,
                auth=access.auth,
                limiter=Admission(limiters, concurrent=access.concurrent),
                ledger=ledger,
                router=router,
                guards=guards,
                cache=cache,
                prompts=prompts,
                tools=runner,
                retrieval=retriever,
            )

            parts.own("telemetry", telemetry.aclose)
            await telemetry.start(
                deployments=[(d.name, d.provider) for d in registry.all()],
                circuits=router.circuits,
                store_errors=_store_errors(access, ledger, stage),
                unknown_cost=(lambda: ledger.unknown_costs) if isinstance(ledger, UsageLedger) else _zero,
            )

            idempotency = idempotency_store(settings.idempotency, settings.redis)
            parts.own("idempotency", idempotency.aclose)

            runtime = cls(
                settings=settings,
                admin_key=admin_key,
                registry=registry,
                access=access,
                ledger=ledger,
                reports=Reports(ledger_store, ledger.outage if isinstance(ledger, UsageLedger) else None),
                router=router,
                guards=guards,
                cache=cache,
                gateway=gateway,
                telemetry=telemetry,
                idempotency=idempotency,
                stores=tuple(network_stores(settings)),
                prompts=prompt_registry,
                tools=tool_set,
                rag=rag,
            )
            try:
                yield runtime
            finally:
                runtime.draining = True


class _Parts:
    """Pushes each part's close on the stack, logging (at debug) each part taken and each part closed."""

    def __init__(self, stack: AsyncExitStack) -> None:
        self._stack = stack

    def own(self, name: str, close: Callable[[], Awaitable[None] | None]) -> None:
        log.debug("owning %s", name, extra={"part": name})

        async def closing() -> None:
            log.debug("closing %s", name, extra={"part": name})
            result = close()
            if result is not None:
                await result

        self._stack.push_async_callback(closing)


def _ledger(settings: Settings, prices: PriceBook) -> tuple[UsageLedger | CostLedger, LedgerStore | None]:
    """The usage ledger and its store; with the ledger off, requests are still priced (``CostLedger``)."""
    if not settings.ledger.enabled:
        return CostLedger(prices), None
    store = ledger_store(settings.ledger)
    return UsageLedger(settings.ledger, store, prices), store


def _store_errors(
    access: Access, ledger: Ledger, cache: ResponseCacheStage | None
) -> dict[str, Callable[[], int]]:
    """The stages' store-error counters, read live by the metrics."""
    return {
        "rate_limit": lambda: access.rate.store_errors,
        "budget": lambda: access.budget.store_errors,
        "ledger_journal": (lambda: ledger.journal_errors) if isinstance(ledger, UsageLedger) else _zero,
        "cache": (lambda: cache.stats.errors) if cache is not None else _zero,
    }


def _zero() -> int:
    return 0
