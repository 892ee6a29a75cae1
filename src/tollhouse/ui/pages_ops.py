"""Models and routing, Cache and guardrails, Prompts and experiments, and the Audit log (with dashboard
users, managed by the admin)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tollhouse.api.cache import Invalidate
from tollhouse.errors import NotFound, PermissionDenied
from tollhouse.prompts import views as prompt_views
from tollhouse.prompts.registry import PromptRegistry
from tollhouse.stores.dashboard import User
from tollhouse.ui.auth import MIN_PASSWORD, Signed, hash_password
from tollhouse.ui.pages_core import views_of
from tollhouse.ui.web import Dashboard, Form, FormError, change, signed_in

DAY = 86400.0
USER_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


# ---- models and routing -----------------------------------------------------------------------------------


async def models_page(request: Request, dash: Dashboard, signed: Signed) -> Response:
    router = dash.runtime.router
    circuits = router.circuits()
    deployments = []
    for name, t in router.targets.items():
        cfg = t.dep.config
        deployments.append(
            {
                "name": name,
                "provider": cfg.provider,
                "model": getattr(cfg, "model", None) or name,
                "aliases": list(cfg.aliases),
                "circuit": circuits.get(name, {}),
                "in_flight": t.in_flight,
                "cap": t.cap,
                "ewma_ms": None if t.ewma_s is None else t.ewma_s * 1000,
            }
        )
    routing = dash.runtime.settings.routing
    groups = [
        {
            "name": g.name,
            "strategy": g.strategy,
            "members": [m.model for m in g.deployments],
            "fallbacks": [{"when": list(r.when), "to": list(r.to)} for r in g.fallbacks],
        }
        for g in routing.groups
    ]
    autos = [
        {"name": a.name, "tiers": {"simple": a.simple, "standard": a.standard, "complex": a.complex}}
        for a in routing.auto
    ]
    return dash.page(request, "models.html", deployments=deployments, groups=groups, autos=autos)


# ---- cache and guardrails ---------------------------------------------------------------------------------


async def cache_page(request: Request, dash: Dashboard, signed: Signed) -> Response:
    rt = dash.runtime
    now = time.time()
    ledger, process, rules = await asyncio.gather(
        rt.reports.cache(now - DAY, now + 1),
        rt.cache.snapshot(),
        views_of(dash).guardrails(now - 7 * DAY, now + 1),
    )
    guard_cfg = rt.settings.guardrails
    shadow = [r for r in rules if r["outcome"].startswith("shadow")]
    return dash.page(
        request,
        "cache.html",
        ledger=ledger,
        process=process,
        rules=rules,
        shadow=shadow,
        guardrails_on=guard_cfg.enabled,
        removed=request.query_params.get("removed"),
    )


async def invalidate(request: Request, dash: Dashboard, signed: Signed, form: Form) -> Response:
    data: dict[str, Any] = {k: form.get(k) for k in ("key_id", "user", "team", "model") if form.get(k)}
    if form.get("all") == "on":
        data["all"] = True
    try:
        body = Invalidate.model_validate(data)
    except ValidationError as exc:
        raise FormError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    removed = await dash.runtime.cache.invalidate(tenant=body.tenant(), model=body.model)
    await dash.audit(
        signed, "cache.invalidate", body.tenant() or body.model or "all", removed=removed, **data
    )
    return RedirectResponse(f"/ui/cache?removed={removed}", status_code=303)


# ---- prompts and experiments ------------------------------------------------------------------------------


def _registry(dash: Dashboard) -> PromptRegistry:
    reg = dash.runtime.prompts
    if reg is None:
        raise NotFound("Stored prompts are not enabled on this gateway (prompts.enabled).")
    return reg


async def prompts_page(request: Request, dash: Dashboard, signed: Signed) -> Response:
    reg = dash.runtime.prompts
    prompts = [prompt_views.summary(p) for p in reg.all()] if reg is not None else []
    return dash.page(request, "prompts.html", prompts=prompts, enabled=reg is not None)


def _int(raw: str | None, name: str) -> int | None:
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise FormError(f"{name}: expected a version number.") from None


async def prompt_page(request: Request, dash: Dashboard, signed: Signed) -> Response:
    reg = _registry(dash)
    prompt = reg.get(request.path_params["pid"])
    latest = prompt.latest
    b = _int(request.query_params.get("b"), "b") or latest
    a = _int(request.query_params.get("a"), "a") or max((v for v in prompt.versions if v < b), default=b)
    try:
        diff = prompt_views.diff(prompt, a, b)
    except KeyError as exc:
        raise NotFound(str(exc.args[0])) from None
    arms: list[dict[str, Any]] = []
    experiment = prompt.experiment or {}
    numbers = sorted({int(v) for v in (experiment.get("arms") or {})} | set(prompt.labels.values()))
    metrics = await asyncio.gather(
        *(reg.version_metrics(prompt.id, n) for n in numbers if n in prompt.versions)
    )
    for m in metrics:
        weight = (experiment.get("arms") or {}).get(str(m["version"]))
        arms.append({**m, "weight": weight})
    return dash.page(
        request,
        "prompt.html",
        prompt=prompt,
        versions=sorted(prompt.versions.values(), key=lambda v: -v.version),
        a=a,
        b=b,
        diff=diff,
        arms=arms,
        history=list(reversed(prompt.history)),
        moved=request.query_params.get("moved"),
    )


async def roll_back(request: Request, dash: Dashboard, signed: Signed, form: Form) -> Response:
    pid, label = request.path_params["pid"], form.get("label") or "production"
    event = await _registry(dash).roll_back(pid, label, signed.who)
    await dash.audit(signed, "prompt.roll_back", pid, label=label, to=event.version, previous=event.previous)
    return RedirectResponse(f"/ui/prompts/{pid}?moved={label}", status_code=303)


async def promote(request: Request, dash: Dashboard, signed: Signed, form: Form) -> Response:
    pid, label = request.path_params["pid"], form.get("label") or "production"
    number = _int(form.get("version"), "version")
    if number is None:
        raise FormError("version: name the version to promote.")
    event = await _registry(dash).move_label(pid, label, number, signed.who, "promoted from the dashboard")
    await dash.audit(signed, "prompt.promote", pid, label=label, to=number, previous=event.previous)
    return RedirectResponse(f"/ui/prompts/{pid}?moved={label}", status_code=303)


# ---- audit log and dashboard users ------------------------------------------------------------------------


async def audit_page(request: Request, dash: Dashboard, signed: Signed) -> Response:
    entries = await dash.store.audit_log(200)
    users = await dash.store.users() if signed.is_admin else []
    return dash.page(request, "audit.html", entries=entries, users=users)


def _admin_only(signed: Signed) -> None:
    if not signed.is_admin:
        raise PermissionDenied("Only the admin (signed in with the admin key) manages dashboard users.")


async def add_user(request: Request, dash: Dashboard, signed: Signed, form: Form) -> Response:
    _admin_only(signed)
    name, password = form.get("name"), form.get("password")
    if not USER_NAME.match(name):
        raise FormError("name: 1-64 letters, digits, '.', '_', '@' or '-'.")
    if len(password) < MIN_PASSWORD:
        raise FormError(f"password: at least {MIN_PASSWORD} characters.")
    if not await dash.store.add_user(User(name, hash_password(password), time.time())):
        raise FormError(f"name: a dashboard user {name!r} exists already.")
    await dash.audit(signed, "user.create", name)
    return RedirectResponse("/ui/audit", status_code=303)


async def delete_user(request: Request, dash: Dashboard, signed: Signed, form: Form) -> Response:
    _admin_only(signed)
    name = request.path_params["name"]
    if not await dash.store.delete_user(name):
        raise NotFound(f"No dashboard user {name!r}.")
    await dash.audit(signed, "user.delete", name)
    return RedirectResponse("/ui/audit", status_code=303)


def routes(dash: Dashboard) -> list[Route]:
    return [
        Route("/models", signed_in(dash, models_page), methods=["GET"]),
        Route("/cache", signed_in(dash, cache_page), methods=["GET"]),
        Route("/cache/invalidate", change(dash, invalidate), methods=["POST"]),
        Route("/prompts", signed_in(dash, prompts_page), methods=["GET"]),
        Route("/prompts/{pid}", signed_in(dash, prompt_page), methods=["GET"]),
        Route("/prompts/{pid}/rollback", change(dash, roll_back), methods=["POST"]),
        Route("/prompts/{pid}/promote", change(dash, promote), methods=["POST"]),
        Route("/audit", signed_in(dash, audit_page), methods=["GET"]),
        Route("/users", change(dash, add_user), methods=["POST"]),
        Route("/users/{name}/delete", change(dash, delete_user), methods=["POST"]),
    ]
