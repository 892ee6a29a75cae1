"""Liveness and readiness. Ready means: not draining, every required deployment answers its probe, and every
network store the settings use (Redis, the PostgreSQL database) answers a round trip (shown with its latency).
Each deployment's circuit-breaker state (``closed`` / ``open`` / ``half_open``) is shown next to its probe."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter
from starlette.responses import Response

from tollhouse.api.deps import RuntimeDep
from tollhouse.api.render import json_response
from tollhouse.api.schema_models import Live, Ready
from tollhouse.providers.base import Health, Provider

router = APIRouter(tags=["health"])
PROBE_TIMEOUT_S = 2.0


@router.get("/health/live", summary="The process is up", responses={200: {"model": Live}})
async def live() -> Response:
    return json_response({"status": "ok"})


@router.get(
    "/health/ready",
    summary="Every required dependency is healthy (503 otherwise)",
    responses={200: {"model": Ready}, 503: {"model": Ready, "description": "Degraded or draining"}},
)
async def ready(runtime: RuntimeDep) -> Response:
    deployments = runtime.registry.all()
    stores_task = asyncio.ensure_future(runtime.probe_stores())
    results = await asyncio.gather(*(_probe(d.provider) for d in deployments))
    stores = await stores_task
    circuits = runtime.router.circuits()
    checks: dict[str, dict[str, object]] = {
        d.name: {
            "status": "ok" if h.ok else "down",
            "latency_ms": round(h.latency_ms, 2),
            "detail": h.detail,
            "required": d.config.required,
            "circuit": circuits.get(d.name),
        }
        for d, h in zip(deployments, results, strict=True)
    }
    checks.update(stores)
    draining = runtime.draining
    ok = (
        not draining
        and all(h.ok for d, h in zip(deployments, results, strict=True) if d.config.required)
        and all(s["status"] == "ok" for s in stores.values())
    )
    body = {"status": "ok" if ok else ("draining" if draining else "degraded"), "checks": checks}
    resp = json_response(body)
    resp.status_code = 200 if ok else 503
    return resp


async def _probe(provider: Provider) -> Health:
    t0 = time.perf_counter()
    try:
        h = await asyncio.wait_for(provider.health(), PROBE_TIMEOUT_S)
    except TimeoutError:
        return Health(False, "probe timed out", (time.perf_counter() - t0) * 1000)
    except Exception as exc:
        return Health(False, f"probe failed: {type(exc).__name__}", (time.perf_counter() - t0) * 1000)
    if not h.latency_ms:
        h = Health(h.ok, h.detail, (time.perf_counter() - t0) * 1000)
    return h
