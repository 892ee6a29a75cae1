"""How the HTTP layer reaches the runtime: typed FastAPI dependencies (``RuntimeDep``, ``GatewayDep`` …)
and the helpers the raw-``Request`` routes call (``get_gateway``, ``new_context``, ``credential``,
``parse_body``).

The only module that reads ``app.state``: the ``Runtime`` the lifespan put there is all it holds.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError
from starlette.types import Scope

from tollhouse.access.keys import KeyService
from tollhouse.api.errors import validation_error
from tollhouse.errors import NotFound
from tollhouse.gateway import Gateway
from tollhouse.ledger.reports import Reports
from tollhouse.prompts.registry import PromptRegistry
from tollhouse.runtime import Runtime
from tollhouse.telemetry.observer import Telemetry
from tollhouse.types import Ingress, RequestContext

M = TypeVar("M", bound=BaseModel)


def runtime_of(scope: Scope) -> Runtime:
    """The runtime, from a request's ASGI scope (pure-ASGI middleware has no ``Request``)."""
    rt: Runtime = scope["app"].state.runtime
    return rt


def get_runtime(request: Request) -> Runtime:
    return runtime_of(request.scope)


def get_gateway(request: Request) -> Gateway:
    gw: Gateway = request.scope["app"].state.runtime.gateway  # inlined: every model request calls it
    return gw


def get_keys(request: Request) -> KeyService:
    return get_runtime(request).keys


def get_reports(request: Request) -> Reports:
    return get_runtime(request).reports


def get_telemetry(request: Request) -> Telemetry:
    return get_runtime(request).telemetry


def get_prompts(request: Request) -> PromptRegistry:
    prompts = get_runtime(request).prompts
    if prompts is None:
        raise NotFound("Stored prompts are not enabled on this gateway (prompts.enabled).")
    return prompts


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
PromptsDep = Annotated[PromptRegistry, Depends(get_prompts)]
GatewayDep = Annotated[Gateway, Depends(get_gateway)]
KeysDep = Annotated[KeyService, Depends(get_keys)]
ReportsDep = Annotated[Reports, Depends(get_reports)]
TelemetryDep = Annotated[Telemetry, Depends(get_telemetry)]


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
