"""The hot-route shortcut: hot POSTs enter the app's own middleware stack at its first user middleware (the
same instances every other request goes through), everything else takes the framework's full stack."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tollhouse.api.backpressure import Backpressure
from tollhouse.api.fastpath import Shortcut
from tollhouse.api.middleware import GatewayMiddleware
from tollhouse.app import create_app
from tollhouse.settings import Settings

CHAT = "/v1/chat/completions"


def make_settings() -> Settings:
    return Settings.model_validate(
        {
            "embedded": {"chat": False, "embeddings": False},
            "logging": {"format": "text"},
            "cache": {"mode": "off"},
            "models": [{"name": "m", "provider": "mock", "reply": "hello"}],
        }
    )


def layers(app: Any) -> list[Any]:
    out = []
    while app is not None:
        out.append(app)
        app = getattr(app, "app", None)
    return out


def test_hot_posts_share_the_middleware_instances_of_the_full_stack() -> None:
    app = create_app(make_settings())
    with TestClient(app) as client:
        r = client.post(CHAT, json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200 and r.headers["x-request-id"]
        assert r.json()["choices"][0]["message"]["content"] == "hello"
        stack = app.middleware_stack
        assert isinstance(stack, Shortcut)
        assert isinstance(stack.user, GatewayMiddleware)
        full = layers(stack.app)
        assert any(layer is stack.user for layer in full)  # one instance, not a second chain
        assert sum(isinstance(layer, Backpressure) for layer in full + layers(stack.user)) == 2
        assert {CHAT, "/v1/completions", "/v1/embeddings", "/v1/messages"} <= stack.paths


def test_other_requests_and_bad_hot_requests_keep_their_answers() -> None:
    with TestClient(create_app(make_settings())) as client:
        models = client.get("/v1/models")
        assert models.status_code == 200 and models.headers["x-request-id"]
        wrong = client.get(CHAT)
        assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"  # RFC 9110: 405 says what is
        bad = client.post(CHAT, content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"]["message"]
        assert bad.headers["x-request-id"]
