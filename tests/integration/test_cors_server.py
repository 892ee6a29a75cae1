"""A browser's preflight and call against a real server process (uvicorn, loopback)."""

from __future__ import annotations

import httpx
import pytest
from tests.support.gateway_server import gateway_server

pytestmark = pytest.mark.slow

APP = "http://localhost:5173"


def test_browser_preflight_then_call_against_a_real_server() -> None:
    config = {
        "embedded": {"chat": False, "embeddings": False},
        "models": [{"name": "mock", "provider": "mock"}],
        "server": {"cors": {"allow_origins": [APP]}},
    }
    with gateway_server(config) as gw:
        pre = httpx.options(
            gw.base_url + "/chat/completions",
            headers={
                "origin": APP,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization,content-type",
            },
        )
        assert pre.status_code == 200, pre.text
        assert pre.headers["access-control-allow-origin"] == APP
        r = httpx.post(
            gw.base_url + "/chat/completions",
            headers={"origin": APP},
            json={"model": "mock", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == APP
        assert "x-request-id" in r.headers["access-control-expose-headers"]
