"""CORS (``server.cors``): preflights answered before FastAPI, headers on every answer, off by default."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.conftest import mock_settings

from tollhouse.app import create_app
from tollhouse.config.base import ConfigError
from tollhouse.settings import Settings, load_settings

APP = "https://app.example.com"
CHAT = "/v1/chat/completions"
BODY = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}


def cors_client(**cors: object) -> TestClient:
    base = mock_settings().model_dump()
    base["server"]["cors"] = cors
    return TestClient(create_app(Settings.model_validate(base)), raise_server_exceptions=False)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with cors_client(allow_origins=[APP], max_age_s=120) as c:
        yield c


def preflight(
    c: TestClient, path: str = CHAT, origin: str = APP, headers: str = "authorization, content-type"
) -> httpx.Response:
    return c.options(
        path,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": headers,
        },
    )


def test_preflight_on_a_hot_route_is_allowed(client: TestClient) -> None:
    r = preflight(client)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == APP
    assert "POST" in r.headers["access-control-allow-methods"]
    allowed = r.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert r.headers["access-control-max-age"] == "120"
    assert "access-control-allow-credentials" not in r.headers


def test_preflight_from_another_origin_is_refused(client: TestClient) -> None:
    r = preflight(client, origin="https://evil.example.net")
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers


def test_preflight_with_a_header_not_allowed_is_refused(client: TestClient) -> None:
    r = preflight(client, headers="x-secret-thing")
    assert r.status_code == 400


def test_actual_request_carries_allow_origin_and_exposed_headers(client: TestClient) -> None:
    r = client.post(CHAT, json=BODY, headers={"origin": APP})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == APP
    exposed = r.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed and "x-tollhouse-cost-usd" in exposed
    assert r.headers["vary"].lower().find("origin") >= 0


def test_errors_carry_the_headers_too(client: TestClient) -> None:
    r = client.post(
        CHAT, json={"model": "nope", "messages": [{"role": "user", "content": "x"}]}, headers={"origin": APP}
    )
    assert r.status_code == 404
    assert r.headers["access-control-allow-origin"] == APP


def test_request_without_origin_is_unchanged(client: TestClient) -> None:
    r = client.post(CHAT, json=BODY)
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


def test_off_by_default_preflight_is_405() -> None:
    with TestClient(create_app(mock_settings()), raise_server_exceptions=False) as c:
        r = preflight(c)
        assert r.status_code == 405
        assert "access-control-allow-origin" not in r.headers
        r = c.post(CHAT, json=BODY, headers={"origin": APP})
        assert "access-control-allow-origin" not in r.headers


def test_wildcard_origin() -> None:
    with cors_client(allow_origins=["*"]) as c:
        r = preflight(c, origin="http://localhost:5173")
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "*"


def test_credentials_echo_the_origin() -> None:
    with cors_client(allow_origins=[APP], allow_credentials=True) as c:
        r = c.get("/health/live", headers={"origin": APP})
        assert r.headers["access-control-allow-origin"] == APP
        assert r.headers["access-control-allow-credentials"] == "true"


@pytest.mark.parametrize(
    ("cors", "named"),
    [
        ({"allow_origins": ["app.example.com"]}, "is not an origin"),
        ({"allow_origins": ["https://app.example.com/path"]}, "is not an origin"),
        ({"allow_origins": ["*"], "allow_credentials": True}, "explicit origins"),
        ({"allow_origins": [APP], "allow_methods": ["FETCH"]}, "unknown HTTP method"),
        ({"allow_origins": [APP], "max_age_s": -1}, "max_age_s"),
    ],
)
def test_bad_cors_config_is_refused_naming_the_problem(
    cors: dict[str, object], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOLLHOUSE_SERVER__CORS", json.dumps(cors))
    with pytest.raises(ConfigError, match=named):
        load_settings()
