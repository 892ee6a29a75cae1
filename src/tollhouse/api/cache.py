"""Cache routes: ``GET /v1/cache/stats`` (this process's counters and sizes, plus every replica's
outcomes from the ledger) and ``POST /admin/cache/invalidate`` (by API key, user, team, model, or all)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, model_validator
from starlette.responses import Response

from tollhouse.api.admin import Admin, require_admin_unless_open
from tollhouse.api.audit import audit
from tollhouse.api.deps import RuntimeDep, parse_body
from tollhouse.api.render import json_response
from tollhouse.api.schema_models import CacheStats, Invalidated
from tollhouse.errors import NotFound

router = APIRouter(tags=["cache"])


class Invalidate(BaseModel):
    """Which entries to drop: any combination of one tenant (key_id, user or team) and a model, or all."""

    model_config = ConfigDict(extra="forbid")
    key_id: str | None = None
    user: str | None = None
    team: str | None = None
    model: str | None = None
    all: bool = False

    @model_validator(mode="after")
    def _one_scope(self) -> Invalidate:
        tenants = [x for x in (self.key_id, self.user, self.team) if x is not None]
        if len(tenants) > 1:
            raise ValueError("name at most one of key_id, user, team")
        if not self.all and not tenants and self.model is None:
            raise ValueError('name key_id, user, team and/or model, or send {"all": true}')
        if self.all and (tenants or self.model is not None):
            raise ValueError('"all": true drops everything; do not combine it with a tenant or model')
        return self

    def tenant(self) -> str | None:
        if self.key_id is not None:
            return f"key:{self.key_id}"
        if self.user is not None:
            return f"user:{self.user}"
        if self.team is not None:
            return f"team:{self.team}"
        return None


@router.get(
    "/v1/cache/stats",
    summary="Cache hits, misses and savings (every replica, and this process)",
    responses={200: {"model": CacheStats}},
)
async def cache_stats(
    request: Request,
    runtime: RuntimeDep,
    since: float | None = Query(None, description="Epoch seconds for the ledger view; default: 30 days ago."),
) -> Response:
    """Needs the admin key, except in open mode (no admin key, no API keys: loopback only)."""
    require_admin_unless_open(request, runtime)
    out: dict[str, Any] = {"process": await runtime.cache.snapshot()}
    now = time.time()
    try:
        out["ledger"] = await runtime.reports.cache(since or now - 30 * 86400, now + 1)
    except NotFound:
        out["ledger"] = None  # the ledger is off: only this process's counters exist
    proc = out["process"]
    for k in ("entries", "semantic_entries", "hits", "semantic_hits", "misses", "hit_rate", "saved_usd"):
        src = out["ledger"] if out["ledger"] is not None and k in out["ledger"] else proc
        out[k] = src.get(k, 0)
    return json_response(out)


@router.post(
    "/admin/cache/invalidate",
    dependencies=[Admin],
    tags=["admin"],
    summary="Drop cached answers by key, user, team and/or model, or all",
    responses={200: {"model": Invalidated}},
)
async def invalidate(request: Request, runtime: RuntimeDep) -> Response:
    body = await parse_body(request, Invalidate)
    removed = await runtime.cache.invalidate(tenant=body.tenant(), model=body.model)
    target = body.tenant() or body.model or "all"
    await audit(request, "cache.invalidate", target, removed=removed, **body.model_dump(exclude_none=True))
    return json_response({"removed": removed})
