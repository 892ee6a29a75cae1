"""Admin API under ``/admin``: API keys (create, list, get, update, rotate, revoke) and usage reports.

Every route needs the admin key (``auth.admin_key_env``); without one configured the admin API is off (403)
and keys are managed with ``tollhouse keys``. Secrets are returned once, by create and rotate.
"""

from __future__ import annotations

import hmac
import time
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from tollhouse.access.keys import KeySpec, public
from tollhouse.api.audit import audit
from tollhouse.api.deps import KeysDep, ReportsDep, RuntimeDep, credential, parse_body
from tollhouse.api.render import json_response
from tollhouse.api.schema_models import ApiKeyList, ApiKeyOut, CostReport, UsageReport
from tollhouse.errors import AuthenticationFailed, PermissionDenied
from tollhouse.runtime import Runtime

router = APIRouter(prefix="/admin", tags=["admin"])


def require_admin(request: Request, runtime: RuntimeDep) -> None:
    admin = runtime.admin_key
    if admin is None:
        raise PermissionDenied(
            "The admin API is disabled: set auth.admin_key_env to the name of an environment variable "
            "holding an admin key (or use `tollhouse keys`)."
        )
    given = credential(request)
    if not given:
        raise AuthenticationFailed("Missing admin key.")
    if not hmac.compare_digest(given.encode(), admin.encode()):
        raise AuthenticationFailed("Incorrect admin key.")


def require_admin_unless_open(request: Request, runtime: Runtime) -> None:
    """Read-only reports need the admin key, except in open mode (no admin key, no API keys: the gateway
    then serves only on loopback)."""
    if not runtime.open_mode:
        require_admin(request, runtime)


Admin = Depends(require_admin)


@router.post(
    "/keys",
    dependencies=[Admin],
    status_code=201,
    summary="Create an API key (the secret is in the answer, once)",
    responses={201: {"model": ApiKeyOut}},
)
async def create_key(request: Request, keys: KeysDep) -> Response:
    spec = await parse_body(request, KeySpec)
    secret, key = await keys.create(spec)
    await audit(request, "key.create", key.id, **spec.model_dump(exclude_none=True))
    return Response(orjson.dumps(public(key, secret)), status_code=201, media_type="application/json")


@router.get("/keys", dependencies=[Admin], summary="List API keys", responses={200: {"model": ApiKeyList}})
async def list_keys(keys: KeysDep) -> Response:
    return json_response({"data": [public(k) for k in await keys.list()]})


@router.get(
    "/keys/{key_id}", dependencies=[Admin], summary="Get one API key", responses={200: {"model": ApiKeyOut}}
)
async def get_key(key_id: str, keys: KeysDep) -> Response:
    return json_response(public(await keys.get(key_id)))


@router.patch(
    "/keys/{key_id}",
    dependencies=[Admin],
    summary="Update an API key (fields left out are unchanged)",
    responses={200: {"model": ApiKeyOut}},
)
async def update_key(request: Request, key_id: str, keys: KeysDep) -> Response:
    spec = await parse_body(request, KeySpec)
    key = await keys.update(key_id, spec)
    await audit(request, "key.update", key.id, **spec.model_dump(exclude_none=True))
    return json_response(public(key))


@router.post(
    "/keys/{key_id}/rotate",
    dependencies=[Admin],
    summary="Replace a key's secret (the new one is in the answer, once)",
    responses={200: {"model": ApiKeyOut}},
)
async def rotate_key(request: Request, key_id: str, keys: KeysDep) -> Response:
    secret, key = await keys.rotate(key_id)
    await audit(request, "key.rotate", key.id)
    return json_response(public(key, secret))


@router.post(
    "/keys/{key_id}/revoke",
    dependencies=[Admin],
    summary="Revoke an API key (refused by every replica within a second)",
    responses={200: {"model": ApiKeyOut}},
)
async def revoke_key(request: Request, key_id: str, keys: KeysDep) -> Response:
    key = await keys.revoke(key_id)
    await audit(request, "key.revoke", key.id)
    return json_response(public(key))


@router.get(
    "/usage",
    dependencies=[Admin],
    summary="Usage aggregates from the ledger",
    responses={200: {"model": UsageReport}},
)
async def usage(
    reports: ReportsDep,
    group_by: Literal["key_id", "user", "team", "model", "day"] = Query("key_id"),
    since: float | None = Query(None, description="Epoch seconds; default: 30 days ago."),
    until: float | None = Query(None, description="Epoch seconds; default: now."),
) -> Response:
    now = time.time()
    out: dict[str, Any] = await reports.usage(group_by, since or now - 30 * 86400, until or now + 1)
    return json_response(out)


costs_router = APIRouter(tags=["reports"])


@costs_router.get(
    "/v1/costs", summary="Spend summary (admin key, or open mode)", responses={200: {"model": CostReport}}
)
async def costs(
    request: Request,
    runtime: RuntimeDep,
    since: float | None = Query(None, description="Epoch seconds; default: 30 days ago."),
    until: float | None = Query(None, description="Epoch seconds; default: now."),
) -> Response:
    """Spend summary. Needs the admin key — except in open mode (no admin key, no API keys: loopback)."""
    require_admin_unless_open(request, runtime)
    now = time.time()
    return json_response(await runtime.reports.costs(since or now - 30 * 86400, until or now + 1))
