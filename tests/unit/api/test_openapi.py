"""The OpenAPI document covers exactly the routes served, with bodies, answers, examples and auth; /docs and
/redoc load nothing from outside the gateway."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import mock_settings

from tollhouse.api.schema import BODIES, documented_operations, served_operations
from tollhouse.app import create_app


@pytest.fixture(scope="module")
def app_client() -> Iterator[TestClient]:
    with TestClient(create_app(mock_settings()), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def schema(app_client: TestClient) -> dict[str, Any]:
    r = app_client.get("/openapi.json")
    assert r.status_code == 200
    out: dict[str, Any] = r.json()
    return out


def test_every_served_route_is_documented_and_nothing_else(
    app_client: TestClient, schema: dict[str, Any]
) -> None:
    served = served_operations(app_client.app.routes)  # type: ignore[attr-defined]
    documented = documented_operations(schema)
    assert served - documented == set(), "served but not in the schema"
    assert documented - served == set(), "in the schema but not served"
    for must in [
        ("post", "/v1/chat/completions"),
        ("get", "/v1/models/{model_id}"),
        ("post", "/admin/keys"),
        ("get", "/admin/usage"),
        ("get", "/v1/costs"),
        ("get", "/v1/cache/stats"),
        ("post", "/admin/cache/invalidate"),
        ("post", "/v1/feedback"),
        ("get", "/metrics"),
        ("get", "/health/ready"),
    ]:
        assert must in documented


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    name = ref.rsplit("/", 1)[-1]
    out: dict[str, Any] = schema["components"]["schemas"][name]
    return out


def test_every_json_operation_has_a_success_model_with_an_example(schema: dict[str, Any]) -> None:
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            ok = next(c for c in ("200", "201", "202") if c in op["responses"])
            content = op["responses"][ok]["content"]
            if path in ("/metrics", "/admin/prompts/{pid}/diff"):
                assert "text/plain" in content
                continue
            model = _resolve(schema, content["application/json"]["schema"])
            assert model.get("properties"), f"{method} {path}: no response model"
            assert model.get("examples"), f"{method} {path}: no example"
            assert "default" in op["responses"], f"{method} {path}: no error answer"


def test_raw_body_routes_document_their_body(schema: dict[str, Any]) -> None:
    for (method, path), model in BODIES.items():
        body = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        assert _resolve(schema, body)["title"] == model.__name__
    chat = schema["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]
    assert _resolve(schema, chat["schema"])["properties"]["messages"]


def test_bearer_security_everywhere_but_health(schema: dict[str, Any]) -> None:
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key, or the admin key.",
    }
    assert {"bearer": []} in schema["security"]
    assert schema["paths"]["/health/live"]["get"]["security"] == []
    assert "security" not in schema["paths"]["/admin/keys"]["post"]  # the global requirement applies


@pytest.mark.parametrize(
    ("page", "script"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")]
)
def test_docs_pages_load_only_local_assets(app_client: TestClient, page: str, script: str) -> None:
    r = app_client.get(page)
    assert r.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', r.text) + re.findall(r"url: '([^']+)'", r.text)
    assert urls, r.text
    assert all(u.startswith("/") for u in urls), urls  # nothing from a CDN or font host
    assert f"/docs/assets/{script}" in urls
    for u in urls:
        asset = app_client.get(u)
        assert asset.status_code == 200, u
        assert len(asset.content) > 100


def test_unknown_asset_is_404(app_client: TestClient) -> None:
    assert app_client.get("/docs/assets/../../etc/passwd").status_code == 404
    assert app_client.get("/docs/assets/other.js").status_code == 404
