"""The dashboard as an ASGI app mounted at ``/ui``: its routes, its static files (vendored htmx and uPlot
with their licences, our CSS and script) and the security headers on every answer.

It is a separate Starlette app, not part of the API: its pages are HTML for people, so they stay out of
the OpenAPI document. It reads the gateway's ``Runtime`` from the parent app (opened by its lifespan) and
opens its own store (users, sessions, audit log) on first use.
"""

from __future__ import annotations

import logging
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tollhouse.config.base import ConfigError
from tollhouse.errors import TollhouseError
from tollhouse.runtime import Runtime
from tollhouse.settings import Settings
from tollhouse.stores.build import dashboard_store
from tollhouse.ui import pages_core, pages_keys, pages_ops
from tollhouse.ui.tail import Tail
from tollhouse.ui.web import SECURITY_HEADERS, Dashboard

log = logging.getLogger("tollhouse.ui")


class _Headers:
    """Adds the security headers to every answer; opens the store before the first request."""

    def __init__(self, app: ASGIApp, dash: Dashboard) -> None:
        self.app = app
        self.dash = dash
        self._headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.dash.ensure_open()
        except (ConfigError, TollhouseError) as exc:  # retried by the next request
            log.error("dashboard store unavailable: %s", exc)
            answer = PlainTextResponse(f"The dashboard is unavailable: {exc}", 503)
            await answer(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self._headers]
            await send(message)

        await self.app(scope, receive, sending)


class DashboardApp:
    """Built with the gateway app; ``tail`` is fed by ``GatewayMiddleware`` on the gateway app."""

    def __init__(self, settings: Settings) -> None:
        self.tail = Tail()
        self.settings = settings
        self.dash: Dashboard | None = None

    def asgi(self, parent: FastAPI) -> ASGIApp:
        def runtime() -> Runtime:
            rt: Runtime = parent.state.runtime
            return rt

        dash = self.dash = Dashboard(lambda: dashboard_store(self.settings.ledger), self.tail, runtime)
        static = Path(str(files("tollhouse.ui") / "static"))
        app = Starlette(
            routes=[
                Mount("/static", StaticFiles(directory=static), name="static"),
                *pages_core.routes(dash),
                *pages_keys.routes(dash),
                *pages_ops.routes(dash),
            ]
        )
        return _Headers(app, dash)

    async def record_change(self, who: str, action: str, target: str, **detail: Any) -> None:
        """An admin API change, into the audit log (``Runtime.audit``)."""
        if self.dash is not None:
            await self.dash.audit_api(who, action, target, **detail)

    async def aclose(self) -> None:
        if self.dash is not None:
            await self.dash.aclose()
