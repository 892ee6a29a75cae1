"""The OpenAPI document and the pages that show it, offline.

The document covers every route the app serves: the ingresses' schema twins (their served routes read raw
bodies, ADR 0002) plus every other route as declared, with request bodies for the routes that parse raw
JSON (``BODIES``), the error envelope on every operation, and two security schemes (``Authorization:
Bearer`` and ``X-API-Key``) so "Try it" works with auth on. ``/docs`` (Swagger UI) and ``/redoc`` load
their scripts from the ``fastapi_offline`` package, served here: no CDN, so they work air-gapped.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRouter, iter_route_contexts
from pydantic import BaseModel
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute

from tollhouse.access.keys import KeySpec
from tollhouse.api.cache import Invalidate
from tollhouse.api.schema_models import ErrorEnvelope
from tollhouse.api.telemetry import FeedbackBody

# Routes that read a raw JSON body (``parse_body``): the model that validates it.
BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("post", "/admin/keys"): KeySpec,
    ("patch", "/admin/keys/{key_id}"): KeySpec,
    ("post", "/admin/cache/invalidate"): Invalidate,
    ("post", "/v1/feedback"): FeedbackBody,
}
# Open to anyone, whatever the auth settings.
PUBLIC = {"/health/live", "/health/ready"}
ASSETS = "/docs/assets"
_ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
_ASSET_NAMES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API key, or the admin key."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
DOC_ROUTES = {"/openapi.json", "/docs", "/redoc", ASSETS + "/{name}"}


def served_operations(routes: Iterable[BaseRoute]) -> set[tuple[str, str]]:
    """(method, path) of every route served, included routers expanded, the docs' own pages left out."""
    out: set[tuple[str, str]] = set()
    for rc in iter_route_contexts(list(routes)):
        path = (rc.path_format or "").replace(":path}", "}")
        if not path or path in DOC_ROUTES:
            continue
        out |= {(m.lower(), path) for m in rc.methods or () if m != "HEAD"}
    return out


def documented_operations(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m, p) for p, ops in schema["paths"].items() for m in ops}


def build(app: FastAPI, version: str, twins: Iterable[APIRouter]) -> dict[str, Any]:
    routes: list[BaseRoute] = [r for t in twins for r in t.routes]
    schema = get_openapi(
        title="Tollhouse",
        version=version,
        description="OpenAI-compatible LLM gateway. Send your OpenAI SDK to `/v1`. Authenticate with "
        "`Authorization: Bearer <key>` (or `X-API-Key`); admin routes take the admin key.",
        routes=[*routes, *app.routes],
    )
    components = schema.setdefault("components", {})
    defs = components.setdefault("schemas", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    schema["security"] = [{"bearer": []}, {"apiKey": []}]
    defs["ErrorEnvelope"] = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
    defs.update(defs["ErrorEnvelope"].pop("$defs", {}))
    error = {"description": "Error (OpenAI's envelope)", "content": _json("ErrorEnvelope")}
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            op.setdefault("responses", {}).setdefault("default", error)
            if path in PUBLIC:
                op["security"] = []
            model = BODIES.get((method, path))
            if model is not None:
                js = model.model_json_schema(ref_template="#/components/schemas/{model}")
                defs.update(js.pop("$defs", {}))
                defs[model.__name__] = js
                op["requestBody"] = {"required": True, "content": _json(model.__name__)}
    return schema


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def install(app: FastAPI, version: str, twins: Iterable[APIRouter]) -> None:
    """The document at ``/openapi.json``; Swagger UI at ``/docs`` and ReDoc at ``/redoc``, both offline."""
    twins = list(twins)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app, version, twins)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    static = files("fastapi_offline") / "static"

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Tollhouse — API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="Tollhouse — API",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    async def asset(name: str) -> Response:
        if name not in _ASSET_NAMES:
            raise HTTPException(404, "Not Found")
        media = _ASSET_TYPES[name[name.rindex(".") :]]
        return Response(
            (static / name).read_bytes(), media_type=media, headers={"cache-control": "public, max-age=86400"}
        )

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
    app.add_api_route(ASSETS + "/{name}", asset, methods=["GET"], include_in_schema=False)
