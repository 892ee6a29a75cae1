"""What one ingress (a wire format: ``api/openai/``, later ``api/anthropic/``) hands the app: its FastAPI
routes and its hot routes, the POST paths ``api.fastpath.HotRoutes`` calls directly. The app serves every
ingress in ``app.INGRESSES``; adding one touches that tuple only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Ingress:
    name: str
    router: APIRouter
    # path → route function. Only routes whose one parameter is the raw Request (ADR 0002, ADR 0003): a
    # route that needs FastAPI (path parameters, dependencies, typed bodies) must not be listed.
    hot_routes: Mapping[str, Endpoint]
    # Schema-only twins of routes that read raw bodies (typed bodies, responses, examples for /docs).
    docs_router: APIRouter | None = None
