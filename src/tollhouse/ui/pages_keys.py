"""Keys and budgets: list, create (the secret shown once), edit limits / budgets / allowed models, rotate,
revoke — through the same ``KeyService`` and ``KeySpec`` validation as ``/admin/keys``."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollhouse.access.keys import KeySpec, public
from tollhouse.ui.auth import Signed
from tollhouse.ui.web import Dashboard, Form, FormError, change, signed_in

_NUMBERS = {"rpm": int, "tpm": int, "daily_usd": float, "monthly_usd": float}


def spec_from(form: Form, *, clear_emptied: bool = False) -> KeySpec:
    """The key fields of a form. A field left empty is not set on create; on edit (``clear_emptied``) a field
    the form sent empty is cleared: the edit form shows every current value, so emptying one removes that
    user, team, model list (all models), limit or budget."""
    data: dict[str, Any] = {}
    for name in ("name", "user", "team"):
        if form.get(name):
            data[name] = form.get(name)
        elif clear_emptied and name in form:
            data[name] = "" if name == "name" else None
    models = [m.strip() for m in form.get("models").replace("\n", ",").split(",") if m.strip()]
    if models:
        data["models"] = models
    elif clear_emptied and "models" in form:
        data["models"] = None
    for name, kind in _NUMBERS.items():
        raw = form.get(name)
        if raw:
            try:
                data[name] = kind(raw)
            except ValueError:
                raise FormError(f"{name}: {raw!r} is not a number.") from None
        elif clear_emptied and name in form:
            data[name] = None
    try:
        return KeySpec.model_validate(data)
    except ValidationError as exc:
        raise FormError(
            "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        ) from None


def _changes(spec: KeySpec) -> dict[str, Any]:
    return spec.model_dump(exclude_none=True)


async def keys_page(request: Request, dash: Dashboard, signed: Signed) -> Response:
    keys = await dash.runtime.keys.list()
    rt = dash.runtime
    models = [n for n, _ in rt.router.public_groups()] + [d.name for d in rt.registry.all()]
    return dash.page(request, "keys.html", keys=list(reversed(keys)), models=models)


async def key_page(request: Request, dash: Dashboard, signed: Signed) -> Response:
    key = await dash.runtime.keys.get(request.path_params["key_id"])
    return dash.page(request, "key.html", key=key)


async def create(request: Request, dash: Dashboard, signed: Signed, form: Form) -> Response:
    spec = spec_from(form)
    secret, key = await dash.runtime.keys.create(spec)
    await dash.audit(signed, "key.create", key.id, **_changes(spec))
    return dash.page(request, "secret.html", 201, key=public(key), secret=secret, action="created")


async def update(request: Request, dash: Dashboard, signed: Signed, form: Form) -> Response:
    spec = spec_from(form, clear_emptied=True)
    key = await dash.runtime.keys.update(request.path_params["key_id"], spec)
    await dash.audit(signed, "key.update", key.id, **spec.model_dump(exclude_unset=True))
    return dash.page(request, "key.html", key=key, saved=True)


async def rotate(request: Request, dash: Dashboard, signed: Signed, form: Form) -> Response:
    secret, key = await dash.runtime.keys.rotate(request.path_params["key_id"])
    await dash.audit(signed, "key.rotate", key.id)
    return dash.page(request, "secret.html", key=public(key), secret=secret, action="rotated")


async def revoke(request: Request, dash: Dashboard, signed: Signed, form: Form) -> Response:
    key = await dash.runtime.keys.revoke(request.path_params["key_id"])
    await dash.audit(signed, "key.revoke", key.id)
    return dash.page(request, "key.html", key=key, saved=True)


def routes(dash: Dashboard) -> list[Route]:
    return [
        Route("/keys", signed_in(dash, keys_page), methods=["GET"]),
        Route("/keys", change(dash, create), methods=["POST"]),
        Route("/keys/{key_id}", signed_in(dash, key_page), methods=["GET"]),
        Route("/keys/{key_id}", change(dash, update), methods=["POST"]),
        Route("/keys/{key_id}/rotate", change(dash, rotate), methods=["POST"]),
        Route("/keys/{key_id}/revoke", change(dash, revoke), methods=["POST"]),
    ]
