"""Application factory: routes and middleware; the lifespan enters the ``Runtime`` (everything long-lived,
built from the settings, closed in reverse)."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tollhouse.api import errors as api_errors
from tollhouse.api.admin import costs_router
from tollhouse.api.admin import router as admin_router
from tollhouse.api.backpressure import Backpressure
from tollhouse.api.cache import router as cache_router
from tollhouse.api.fastpath import HotRoutes
from tollhouse.api.health import router as health_router
from tollhouse.api.idempotency import Idempotency
from tollhouse.api.ingress import Endpoint, Ingress
from tollhouse.api.middleware import GatewayMiddleware
from tollhouse.api.openai import INGRESS as OPENAI
from tollhouse.api.openai.docs import install_openapi
from tollhouse.api.telemetry import install as install_telemetry
from tollhouse.runtime import Runtime
from tollhouse.settings import Settings, load_settings
from tollhouse.telemetry.observer import Telemetry
from tollhouse.version import __version__

log = logging.getLogger("tollhouse.app")

# The wire formats served. Each ingress brings its routes and its hot-route table (see ``api.ingress``).
INGRESSES: tuple[Ingress, ...] = (OPENAI,)


def create_app(settings: Settings | None = None, *, telemetry: Telemetry | None = None) -> FastAPI:
    """Build the ASGI app. Nothing heavy happens until the lifespan starts. ``telemetry`` defaults to one
    built from the settings (tests pass one with an in-memory span exporter); the runtime starts and closes
    it."""
    settings = settings or load_settings()
    telemetry = telemetry or Telemetry(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Runtime.open(settings, telemetry) as runtime:
            app.state.runtime = runtime
            _tune_gc()
            log.info("ready", extra={"models": [d.name for d in runtime.registry.all()]})
            yield
        log.info("stopped")

    app = FastAPI(title="Tollhouse", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url=None)
    api_errors.install(app)
    hot_routes: dict[str, Endpoint] = {}
    for ingress in INGRESSES:
        app.include_router(ingress.router)
        hot_routes.update(ingress.hot_routes)
    app.include_router(health_router)
    app.include_router(admin_router)
    app.include_router(costs_router)
    app.include_router(cache_router)
    install_telemetry(app, settings)
    install_openapi(app, __version__)
    # Innermost first: HotRoutes serves the ingresses' hot POST routes without FastAPI's per-request
    # machinery, inside GatewayMiddleware (request id, body limit, access log) like every other request.
    app.add_middleware(HotRoutes, handlers=app.exception_handlers, routes=hot_routes)
    # Backpressure inside Idempotency: a duplicate waiting for its first request holds no slot.
    app.add_middleware(
        Backpressure,
        max_in_flight=settings.server.max_in_flight,
        retry_after_s=settings.server.overload_retry_after_s,
    )
    if settings.idempotency.enabled:
        app.add_middleware(Idempotency, cfg=settings.idempotency)
    app.add_middleware(
        GatewayMiddleware,
        max_body_bytes=settings.server.max_body_bytes,
        access_log_enabled=settings.logging.access_log,
        access_log_sample=settings.logging.access_log_sample,
        telemetry=telemetry,
    )
    return app


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
