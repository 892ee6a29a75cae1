"""Direct dispatch of the ingresses' hot routes, below ``GatewayMiddleware`` and above FastAPI's own stack.

Each ingress lists its hot POST routes (``api.ingress.Ingress.hot_routes``; OpenAI's:
``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``). They take only the raw ``Request``
(ADR 0002), so FastAPI's per-request machinery adds nothing for them: route matching over every route,
the dependency resolver (which still builds query params, cookies and headers), the exception-wrapper
closures, the exit-stack middleware and the telemetry checks. Measured on the benchmark machine that was
about a quarter of the gateway's CPU per request (docs/PERFORMANCE.md). This layer calls those route
functions directly and renders their errors with the same handlers the app registers
(``api.errors.install``); every other request — other methods or paths, ``/docs``, ``/health``, 404, 405 —
goes through FastAPI unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tollhouse.api.ingress import Endpoint

Handler = Callable[[Request, Exception], Awaitable[Response]]


class HotRoutes:
    """Pure ASGI. ``handlers`` is the app's exception-handler mapping (read at call time, so handlers added
    later are seen); ``routes`` maps a path to its route function, from every ingress's ``hot_routes``."""

    def __init__(self, app: ASGIApp, *, handlers: Mapping[Any, Any], routes: Mapping[str, Endpoint]) -> None:
        self.app = app
        self.handlers = handlers
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            endpoint = self.routes.get(scope["path"])
            if endpoint is not None:
                request = Request(scope, receive)
                try:
                    response = await endpoint(request)
                except Exception as exc:
                    handler = self._handler_for(exc)
                    if handler is None:
                        raise
                    response = await handler(request, exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _handler_for(self, exc: Exception) -> Handler | None:
        for cls in type(exc).__mro__:
            handler = self.handlers.get(cls)
            if handler is not None:
                h: Handler = handler
                return h
        return None


class Shortcut:
    """Outermost layer of the built stack: a hot POST goes straight to the first user middleware (CORS or
    ``GatewayMiddleware``), past the framework's own outer layers, which do nothing for it: the server-error
    catch-all (``HotRoutes`` renders every exception with the app's handlers, and the server answers 500 to
    anything that escapes), FastAPI's exception-telemetry hook and its body-size limit (``GatewayMiddleware``
    enforces ``server.max_body_bytes``). Measured: ~4 % of the gateway's CPU per request (ADR 0019).
    ``user`` is the same middleware instance the full stack uses, so state such as the in-flight count of
    ``Backpressure`` stays shared by every request."""

    def __init__(self, app: ASGIApp, user: ASGIApp, paths: frozenset[str]) -> None:
        self.app = app
        self.user = user
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self.paths
            and not scope.get("root_path")
        ):
            await self.user(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install_shortcut(app: Starlette, paths: frozenset[str]) -> None:
    """Wrap the stack the app builds (lazily, on its first request) in a ``Shortcut`` to its first user
    middleware. Call after every ``add_middleware``."""
    build = app.build_middleware_stack
    first = app.user_middleware[0].cls

    def build_with_shortcut() -> ASGIApp:
        stack = build()
        layer: Any = stack
        while layer is not None and not isinstance(layer, first):  # type: ignore[arg-type]
            layer = getattr(layer, "app", None)
        return stack if layer is None else Shortcut(stack, layer, paths)

    app.build_middleware_stack = build_with_shortcut  # type: ignore[method-assign]
