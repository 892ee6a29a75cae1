"""Backpressure (pure ASGI): at most ``server.max_in_flight`` model requests per process. Beyond it the
answer is an immediate 503 with Retry-After — a fast, honest "try elsewhere / later" instead of an
unbounded queue whose waiting clients all time out together. Health, metrics and admin paths are exempt."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from tollhouse.api.render import is_anthropic, render_error
from tollhouse.errors import Overloaded


class Backpressure:
    def __init__(self, app: ASGIApp, *, max_in_flight: int, retry_after_s: float) -> None:
        self.app = app
        self.limit = max_in_flight
        self.retry_after_s = retry_after_s
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.limit <= 0
            or scope["type"] != "http"
            or scope["method"] != "POST"
            or not scope["path"].startswith("/v1/")
        ):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            exc = Overloaded(
                f"The gateway is at its limit of {self.limit} requests in flight; retry shortly.",
                retry_after=self.retry_after_s,
            )
            await render_error(exc, scope.get("state", {}).get("request_id"), anthropic=is_anthropic(scope))(
                scope, receive, send
            )
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
