"""Application factory: routes and middleware; the lifespan enters the ``Runtime`` (everything long-lived,
built from the settings, closed in reverse) and marks it draining as soon as the server is told to stop."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import FrameType

from fastapi import FastAPI

from tollhouse.api import errors as api_errors
from tollhouse.api.admin import costs_router
from tollhouse.api.admin import router as admin_router
from tollhouse.api.anthropic import INGRESS as ANTHROPIC
from tollhouse.api.backpressure import Backpressure
from tollhouse.api.cache import router as cache_router
from tollhouse.api.collections import router as collections_router
from tollhouse.api.cors import install as install_cors
from tollhouse.api.fastpath import HotRoutes, install_shortcut
from tollhouse.api.health import router as health_router
from tollhouse.api.idempotency import Idempotency
from tollhouse.api.ingress import Endpoint, Ingress
from tollhouse.api.middleware import GatewayMiddleware
from tollhouse.api.openai import INGRESS as OPENAI
from tollhouse.api.prompts import router as prompts_router
from tollhouse.api.schema import install as install_schema
from tollhouse.api.telemetry import install as install_telemetry
from tollhouse.runtime import Runtime
from tollhouse.settings import Settings, load_settings
from tollhouse.telemetry.logging import flush as flush_logs
from tollhouse.telemetry.observer import Telemetry
from tollhouse.ui.app import DashboardApp
from tollhouse.version import __version__

log = logging.getLogger("tollhouse.app")
Handler = Callable[[int, FrameType | None], object]  # a Python signal handler

# The wire formats served. Each ingress brings its routes and its hot-route table (see ``api.ingress``).
INGRESSES: tuple[Ingress, ...] = (OPENAI, ANTHROPIC)


def create_app(settings: Settings | None = None, *, telemetry: Telemetry | None = None) -> FastAPI:
    """Build the ASGI app. Nothing heavy happens until the lifespan starts. ``telemetry`` defaults to one
    built from the settings (tests pass one with an in-memory span exporter); the runtime starts and closes
    it."""
    settings = settings or load_settings()
    telemetry = telemetry or Telemetry(settings)
    dashboard = DashboardApp(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Runtime.open(settings, telemetry) as runtime:

            def drain() -> None:
                runtime.draining = runtime.gateway.draining = True

            app.state.runtime = runtime
            runtime.audit = dashboard.record_change
            _tune_gc()
            log.info("ready", extra={"models": [d.name for d in runtime.registry.all()]})
            with _on_stop_signal(drain):
                yield
            await dashboard.aclose()
        log.info("stopped")
        flush_logs()  # nothing buffered is left behind on a normal stop

    app = FastAPI(
        title="Tollhouse",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # Tracing, metrics and logs are our own (telemetry/): FastAPI's native OpenTelemetry would look up
        # the global providers on every request, and add a second set of spans and metrics whenever a
        # global provider is configured (e.g. under opentelemetry-instrument).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    api_errors.install(app)
    hot_routes: dict[str, Endpoint] = {}
    for ingress in INGRESSES:
        app.include_router(ingress.router)
        hot_routes.update(ingress.hot_routes)
    app.include_router(health_router)
    app.include_router(admin_router)
    app.include_router(prompts_router)
    app.include_router(costs_router)
    app.include_router(cache_router)
    app.mount("/ui", dashboard.asgi(app))  # HTML for people: outside the API and its OpenAPI document
    app.include_router(collections_router)
    install_telemetry(app, settings)
    install_schema(app, __version__, [i.docs_router for i in INGRESSES if i.docs_router is not None])
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
        shutdown_retry_after_s=settings.server.overload_retry_after_s,
        finished=dashboard.tail.record,  # the dashboard's live tail
    )
    install_cors(app, settings.server.cors)  # outermost: preflights answered before anything else
    install_shortcut(app, frozenset(hot_routes))  # hot POSTs skip the framework's outer layers
    return app


@contextmanager
def _on_stop_signal(callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback`` when the process is told to stop (SIGTERM, SIGINT), then the server's own handler,
    which drains in-flight requests for ``server.graceful_shutdown_s`` and cuts the rest: from the signal
    on, a cancelled request is known to be a cut (503), not a client that left (499). Signals reach only
    the main thread; an app served from another thread (tests) is not told."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    installed: dict[int, tuple[Handler, Handler]] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue  # no handler to chain to: the default action ends the process anyway

        def chained(signum: int, frame: FrameType | None, previous: Handler = previous) -> None:
            callback()
            previous(signum, frame)

        signal.signal(sig, chained)
        installed[sig] = (chained, previous)
    try:
        yield
    finally:
        for signum, (ours, theirs) in installed.items():
            if signal.getsignal(signum) is ours:  # else the server has restored its own already
                signal.signal(signum, theirs)


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
