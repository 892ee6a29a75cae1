"""Request-scoped helpers for routers: the gateway from app state, a fresh RequestContext, the credential."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from tollhouse.api.errors import validation_error
from tollhouse.gateway import Gateway
from tollhouse.types import Ingress, RequestContext

M = TypeVar("M", bound=BaseModel)


def get_gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def new_context(request: Request, endpoint: str, ingress: Ingress = "openai") -> RequestContext:
    state = request.scope.setdefault("state", {})
    ctx = RequestContext(
        request_id=state.get("request_id") or "",
        ingress=ingress,
        endpoint=endpoint,
        tracer=state.get("trace"),  # set by the middleware only when tracing is on
    )
    state["ctx"] = ctx
    return ctx


def credential(request: Request) -> str | None:
    """The API key from ``Authorization: Bearer …`` or ``X-API-Key``, if any."""
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return request.headers.get("x-api-key") or None


async def parse_body(request: Request, model: type[M]) -> M:
    """Validate the raw body once (pydantic-core parses the JSON); errors name the field."""
    body = await request.body()
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise validation_error(exc) from None
