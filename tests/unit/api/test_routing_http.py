"""Routing as an HTTP client sees it: the deployment header and access-log fields, circuit state in
/health/ready, backpressure 503s, and Idempotency-Key replays (including concurrent duplicates)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from tollhouse.api.backpressure import Backpressure
from tollhouse.api.idempotency import Idempotency
from tollhouse.app import create_app
from tollhouse.settings import IdempotencySettings, Settings
from tollhouse.stores.idempotency import MemoryIdempotencyStore

CHAT = "/v1/chat/completions"


def settings(**routing: Any) -> Settings:
    return Settings.model_validate(
        {
            "embedded": {"chat": False, "embeddings": False},
            "logging": {"format": "text"},
            "cache": {"mode": "off"},
            "models": [
                {"name": "flaky", "provider": "mock", "faults": ["status:500"]},
                {"name": "steady", "provider": "mock", "reply": "steady answer"},
            ],
            "routing": {
                "retry": {"max_retries": 0},
                "breaker": {"failure_threshold": 1},
                "groups": [
                    {
                        "name": "g",
                        "deployments": [{"model": "flaky"}],
                        "fallbacks": [{"to": ["steady"]}],
                    }
                ],
                **routing,
            },
        }
    )


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(settings()), raise_server_exceptions=False) as c:
        yield c


def body(model: str = "g", **kw: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **kw}


def test_deployment_header_log_fields_and_circuit_in_health(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tollhouse.access"):
        r = client.post(CHAT, json=body())
    assert r.status_code == 200 and r.json()["model"] == "g"
    assert r.headers["x-tollhouse-deployment"] == "steady" and r.headers["x-tollhouse-attempts"] == "2"
    line = next(rec for rec in caplog.records if rec.name == "tollhouse.access")
    assert line.deployment == "steady" and line.attempts == 2 and line.fallbacks == 1  # type: ignore[attr-defined]
    assert line.failed_attempts == ["flaky:server_error"]  # type: ignore[attr-defined]
    ready = client.get("/health/ready").json()
    assert ready["checks"]["flaky"]["circuit"]["state"] == "open"
    assert ready["checks"]["steady"]["circuit"]["state"] == "closed"
    r = client.post(CHAT, json=body())  # the open circuit is skipped: one attempt
    assert r.headers["x-tollhouse-deployment"] == "steady" and "x-tollhouse-attempts" not in r.headers


def test_stream_fails_over_before_content(client: TestClient) -> None:
    with client.stream("POST", CHAT, json=body(stream=True)) as r:
        text = "".join(r.iter_text())
        assert r.headers["x-tollhouse-deployment"] == "steady"
    assert "steady" in text and text.rstrip().endswith("[DONE]")


def test_idempotent_replay_returns_the_first_result(client: TestClient) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = client.post(CHAT, json=body("steady"), headers=headers)
    second = client.post(CHAT, json=body("steady"), headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content  # same id, same everything
    assert second.headers["x-tollhouse-idempotent-replay"] == "true"
    assert second.headers["x-tollhouse-deployment"] == "steady"
    provider = client.app.state.runtime.registry.get("steady").provider  # type: ignore[attr-defined]
    assert provider.calls == 1
    other = client.post(CHAT, json=body("steady", max_tokens=3), headers=headers)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    third = client.post(CHAT, json=body("steady"), headers={"Idempotency-Key": "order-43"})
    assert third.content != first.content and provider.calls == 2


def test_idempotent_stream_is_replayed_and_errors_are_not_stored(client: TestClient) -> None:
    headers = {"Idempotency-Key": "s-1"}
    first = client.post(CHAT, json=body("steady", stream=True), headers=headers)
    again = client.post(CHAT, json=body("steady", stream=True), headers=headers)
    assert first.text == again.text and first.text.endswith("data: [DONE]\n\n")
    failing = {"Idempotency-Key": "f-1"}
    assert client.post(CHAT, json=body("flaky"), headers=failing).status_code == 502
    assert client.post(CHAT, json=body("flaky"), headers=failing).status_code == 503  # ran again


# ---- the ASGI layers on their own (concurrency is easier to pin down without a server) ------------------


class SlowApp:
    """An ASGI app that answers once ``release`` is set, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        msg = await receive()
        await self.release.wait()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"call %d: " % self.calls + msg["body"]})


async def call(
    app: Any, headers: list[tuple[bytes, bytes]], body: bytes = b"{}"
) -> tuple[int, bytes, dict[bytes, bytes]]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": headers,
        "state": {},
    }
    sent: list[Message] = []
    fed = False

    async def receive() -> Message:
        nonlocal fed
        if not fed:
            fed = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    return start["status"], b"".join(m.get("body", b"") for m in sent[1:]), dict(start["headers"])


async def test_concurrent_duplicates_wait_for_the_first() -> None:
    inner = SlowApp()
    app = Idempotency(inner, store=MemoryIdempotencyStore(60, 100), cfg=IdempotencySettings())
    key = [(b"idempotency-key", b"k1"), (b"authorization", b"Bearer a")]
    tasks = [asyncio.create_task(call(app, key)) for _ in range(5)]
    await asyncio.sleep(0)  # every duplicate is now waiting on the first
    inner.release.set()
    results = await asyncio.gather(*tasks)
    assert inner.calls == 1
    assert {body for _, body, _ in results} == {b"call 1: {}"}
    assert sum(b"x-tollhouse-idempotent-replay" in h for _, _, h in results) == 4
    # Another credential's identical key is another request.
    _, out, _ = await call(app, [(b"idempotency-key", b"k1"), (b"authorization", b"Bearer b")])
    assert out == b"call 2: {}"


async def test_backpressure_refuses_beyond_the_limit_at_once() -> None:
    inner = SlowApp()
    app = Backpressure(inner, max_in_flight=2, retry_after_s=3)
    running = [asyncio.create_task(call(app, [])) for _ in range(2)]
    await asyncio.sleep(0)
    status, out, headers = await asyncio.wait_for(call(app, []), 1.0)  # immediate, not queued
    assert status == 503 and headers[b"retry-after"] == b"3"
    assert orjson.loads(out)["error"]["code"] == "overloaded"
    inner.release.set()
    assert [s for s, _, _ in await asyncio.gather(*running)] == [200, 200]
    assert app.in_flight == 0
    assert (await call(app, []))[0] == 200


def test_groups_are_listed_as_models(client: TestClient) -> None:
    ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert {"flaky", "steady", "g"} <= set(ids)
    assert client.get("/v1/models/g").json()["id"] == "g"
    assert client.get("/v1/models/nope").status_code == 404
