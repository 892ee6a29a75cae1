"""Telemetry routes: the Prometheus scrape endpoint and ``POST /v1/feedback``. Thin: the work is in
``telemetry``."""

from __future__ import annotations

import hmac
import math

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response

from tollhouse.api.deps import GatewayDep, RuntimeDep, TelemetryDep, credential, new_context, parse_body
from tollhouse.api.render import json_response
from tollhouse.api.schema_models import FeedbackAccepted
from tollhouse.errors import AuthenticationFailed, NotFound, Overloaded, PermissionDenied
from tollhouse.settings import Settings
from tollhouse.telemetry.metrics import Metrics

router = APIRouter(tags=["telemetry"])


class FeedbackBody(BaseModel):
    """User feedback on one earlier response, named by its ``x-request-id``."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(
        ..., pattern=r"^[A-Za-z0-9._:\-]{1,128}$", description="The response's x-request-id."
    )
    score: float = Field(..., description="Any scale you choose (e.g. 1 / 0 / -1, or 1-5).")
    comment: str | None = Field(None, max_length=4096, description="Free text, stored, never logged.")

    @field_validator("score")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


@router.post(
    "/v1/feedback",
    status_code=202,
    summary="Attach user feedback to an earlier request",
    responses={202: {"model": FeedbackAccepted}},
)
async def feedback(
    request: Request, gw: GatewayDep, telemetry: TelemetryDep, runtime: RuntimeDep
) -> Response:
    ctx = new_context(request, "feedback")
    await gw.authenticate(ctx, credential(request))
    body = await parse_body(request, FeedbackBody)
    if telemetry.evaluation is None and runtime.prompts is None:
        raise NotFound(
            "Feedback is not enabled on this gateway (telemetry.evaluation.enabled or prompts.enabled)."
        )
    if telemetry.evaluation is not None and not telemetry.feedback(
        body.request_id, body.score, body.comment, ctx.principal.key_id
    ):
        raise Overloaded("Feedback queue is full, try again shortly.", retry_after=1.0)
    if runtime.prompts is not None:  # a rating of a stored prompt's version, when one answered
        await runtime.prompts.rate(body.request_id, body.score)
    resp = json_response({"object": "feedback", "request_id": body.request_id, "status": "accepted"})
    resp.status_code = 202
    return resp


def _require_admin(request: Request, admin_key: str | None) -> None:
    """Metrics name models, deployments and API key ids: while auth is on, only the admin may scrape."""
    if admin_key is None:
        raise PermissionDenied(
            "Scraping metrics needs the admin key, and none is set: set auth.admin_key_env, or "
            "telemetry.metrics.public: true to let anyone scrape."
        )
    given = credential(request) or ""
    if not hmac.compare_digest(given.encode(), admin_key.encode()):
        raise AuthenticationFailed("Scraping metrics needs the admin key.")


def install(app: FastAPI, settings: Settings) -> None:
    """Add the feedback route, and the scrape route at ``telemetry.metrics.path`` when metrics are on
    (admin only while auth is on, unless ``telemetry.metrics.public``)."""
    app.include_router(router)
    m = settings.telemetry.metrics
    if not m.enabled:
        return
    public = m.public

    async def metrics(request: Request, runtime: RuntimeDep) -> Response:
        if not public and not runtime.open_mode:
            _require_admin(request, runtime.admin_key)
        collector = runtime.telemetry.metrics
        assert isinstance(collector, Metrics)
        body, content_type = collector.render()
        return Response(body, media_type=content_type)

    app.add_api_route(
        m.path,
        metrics,
        methods=["GET"],
        summary="Prometheus metrics (admin key while auth is on, unless public)",
        tags=["telemetry"],
        responses={200: {"content": {"text/plain": {"example": "tollhouse_requests_total{...} 42.0"}}}},
    )
