"""Application factory: a FastAPI app whose lifespan builds every long-lived object and closes it."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tollhouse.access.build import Access
from tollhouse.api import errors as api_errors
from tollhouse.api.admin import costs_router
from tollhouse.api.admin import router as admin_router
from tollhouse.api.backpressure import Backpressure
from tollhouse.api.cache import router as cache_router
from tollhouse.api.fastpath import HotRoutes
from tollhouse.api.health import router as health_router
from tollhouse.api.idempotency import Idempotency
from tollhouse.api.middleware import GatewayMiddleware
from tollhouse.api.openai.docs import install_openapi
from tollhouse.api.openai.router import router as openai_router
from tollhouse.api.telemetry import install as install_telemetry
from tollhouse.caching.build import build_cache
from tollhouse.gateway import Gateway
from tollhouse.guardrails.chain import build_guards
from tollhouse.pipeline.guard import GuardChain, NoGuards
from tollhouse.providers.registry import ModelRegistry
from tollhouse.routing.router import Router
from tollhouse.settings import Settings, load_settings
from tollhouse.stores.idempotency import build_store
from tollhouse.telemetry.observer import Telemetry
from tollhouse.version import __version__

log = logging.getLogger("tollhouse.app")


def create_app(settings: Settings | None = None, *, telemetry: Telemetry | None = None) -> FastAPI:
    """Build the ASGI app. Nothing heavy happens until the lifespan starts. ``telemetry`` defaults to one
    built from the settings (tests pass one with an in-memory span exporter)."""
    settings = settings or load_settings()
    telemetry = telemetry or Telemetry(settings)
    idempotency_store = build_store(settings.idempotency, settings.redis)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = await ModelRegistry.build(settings.all_models())
        admin_key = settings.admin_key()
        access = Access.build(settings, admin_key)
        router = Router(registry, settings.routing)
        guards: GuardChain = build_guards(settings.guardrails) or NoGuards()
        cache = build_cache(settings.cache, settings.redis, access.prices)
        gateway = Gateway(
            registry=registry,
            auth=access.auth,
            limiter=access.limiter,
            ledger=access.ledger,
            router=router,
            guards=guards,
            cache=cache,
        )
        app.state.gateway = gateway
        app.state.admin_key = admin_key
        app.state.keys = access.keys
        app.state.reports = access.reports
        app.state.draining = False
        try:
            await access.start()
            await cache.start()
            if settings.routing.breaker.store == "redis":
                from tollhouse.routing.shared import SharedBreakers

                await SharedBreakers.attach(router, settings.redis)
            await telemetry.start(gateway)
            telemetry.metrics.watch_counts(
                {
                    "rate_limit": lambda: access.rate.store_errors,
                    "budget": lambda: access.budget.store_errors,
                    "ledger_journal": lambda: int(getattr(access.ledger, "journal_errors", 0)),
                    "cache": lambda: int(getattr(getattr(cache, "stats", None), "errors", 0)),
                },
                lambda: int(getattr(access.ledger, "unknown_costs", 0)),
            )
        except BaseException:
            await _close_stages(gateway)
            await access.aclose()
            raise
        _tune_gc()
        log.info("ready", extra={"models": [d.name for d in registry.all()]})
        try:
            yield
        finally:
            app.state.draining = True
            await _close_stages(gateway)
            guards.close()
            await access.aclose()
            await telemetry.aclose()
            await idempotency_store.aclose()
            log.info("stopped")

    app = FastAPI(title="Tollhouse", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.settings = settings
    app.state.telemetry = telemetry
    api_errors.install(app)
    app.include_router(openai_router)
    app.include_router(health_router)
    app.include_router(admin_router)
    app.include_router(costs_router)
    app.include_router(cache_router)
    install_telemetry(app, settings)
    install_openapi(app, __version__)
    # Innermost first: HotRoutes serves the OpenAI POST routes without FastAPI's per-request machinery,
    # inside GatewayMiddleware (request id, body limit, access log) like every other request.
    app.add_middleware(HotRoutes, handlers=app.exception_handlers)
    # Backpressure inside Idempotency: a duplicate waiting for its first request holds no slot.
    app.add_middleware(
        Backpressure,
        max_in_flight=settings.server.max_in_flight,
        retry_after_s=settings.server.overload_retry_after_s,
    )
    if settings.idempotency.enabled:
        app.add_middleware(Idempotency, store=idempotency_store, cfg=settings.idempotency)
    app.add_middleware(
        GatewayMiddleware,
        max_body_bytes=settings.server.max_body_bytes,
        access_log_enabled=settings.logging.access_log,
        access_log_sample=settings.logging.access_log_sample,
        telemetry=telemetry,
    )
    return app


async def _close_stages(gateway: Gateway) -> None:
    await gateway.router.aclose()
    await gateway.cache.aclose()
    await gateway.ledger.aclose()
    await gateway.registry.aclose()


# Young-generation threshold once the start-up heap is frozen (CPython's default is 700). See _tune_gc.
GC_GEN0_THRESHOLD = 10_000


def _tune_gc() -> None:
    """Keep the cyclic garbage collector off the hot path (measured: docs/PERFORMANCE.md).

    Everything built at start-up (modules, FastAPI routes, pydantic schemas, provider pools: ~70k objects)
    is moved to the permanent generation, so a full collection no longer walks it — before, each one took
    30-70 ms on the benchmark machine, a pause every few seconds under load. A larger young generation
    means the objects of in-flight requests mostly die by reference counting before a collection sees and
    promotes them. Objects are only counted net of deallocation, so cyclic garbage is still collected.
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def app_from_env() -> FastAPI:
    """Factory for multi-worker serving: each worker reads the config named by TOLLHOUSE_CONFIG."""
    from tollhouse.telemetry.logging import configure

    settings = load_settings()
    configure(settings.logging)
    return create_app(settings)
