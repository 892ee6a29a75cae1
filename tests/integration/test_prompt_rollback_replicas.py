"""Two real gateway processes sharing PostgreSQL (prompts, keys) and Redis or PostgreSQL (per-version
counters): version 2 of a prompt errors twice as often as version 1 on the mock provider, and the production
label moves back to version 1 after version 2's 100th request and not before — with the webhook called, the
log line written, and the move in the version history — and both processes then serve version 1."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from tests.support.gateway_server import GatewayProcess, gateway_server
from tests.support.mock_upstream import free_port
from tests.support.stores import REDIS_URL, pg_schema, require_redis

pytestmark = pytest.mark.slow
ADMIN = "prompt-replica-admin"
AUTH = {"authorization": f"Bearer {ADMIN}"}
VERSION = {
    "messages": [{"role": "system", "content": "Answer about {{ product }}."}],
    "variables": {"product": {"type": "string"}},
}


class _Hooks(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        _Hooks.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def hook_url() -> Iterator[str]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        server.shutdown()


@pytest.fixture(scope="module", params=["redis", "postgres"])
def pair(hook_url: str, request: pytest.FixtureRequest) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    """Counters in Redis or in PostgreSQL (prompts and keys are always in PostgreSQL)."""
    require_redis()
    _Hooks.received.clear()
    config = {
        "embedded": {"chat": False, "embeddings": False},
        "models": [
            {"name": "steady", "provider": "mock", "fail_status": 500, "fail_every": 10},
            {"name": "shaky", "provider": "mock", "fail_status": 500, "fail_every": 5},
        ],
        "routing": {"retry": {"max_retries": 0}, "breaker": {"enabled": False}},
        "auth": {"admin_key_env": "TH_ADMIN"},
        "keys": {"backend": "postgres", "postgres_dsn_env": "TH_PG", "refresh_interval_s": 0.2},
        "redis": {"url": REDIS_URL, "prefix": f"th-test-{uuid.uuid4().hex[:12]}:"},
        "prompts": {
            "enabled": True,
            "backend": "postgres",
            "postgres_dsn_env": "TH_PG",
            "counters": request.param,
            "reload_interval_s": 0.1,
            "rollback": {"check_interval_s": 0.1, "webhook_url": hook_url},
        },
    }
    with ExitStack() as stack:
        env = {"TH_ADMIN": ADMIN, "TH_PG": stack.enter_context(pg_schema())}
        a = stack.enter_context(gateway_server(config, env))
        b = stack.enter_context(gateway_server(config, env))
        yield a, b


def _ask(gw: GatewayProcess, key: str) -> httpx.Response:
    body = {"prompt": {"id": "support", "variables": {"product": "tollhouse"}}, "messages": []}
    return httpx.post(
        f"{gw.base_url}/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
    )


def _labels(gw: GatewayProcess) -> dict[str, int]:
    r = httpx.get(f"{gw.root}/admin/prompts/support", headers=AUTH)
    if r.status_code == 404:  # this process has not reloaded the prompt yet
        return {}
    assert r.status_code == 200, r.text
    return dict(r.json()["labels"])


def _until(pred: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _served(gw: GatewayProcess, key: str, version: str) -> None:
    _until(lambda: _ask(gw, key).headers.get("x-tollhouse-prompt-version") == version)


def test_rollback_after_100_requests_across_two_processes(
    pair: tuple[GatewayProcess, GatewayProcess],
) -> None:
    a, b = pair
    key = httpx.post(f"{a.root}/admin/keys", json={"name": "app"}, headers=AUTH).json()["key"]
    for model in ("steady", "shaky"):
        r = httpx.post(
            f"{a.root}/admin/prompts/support/versions", json={**VERSION, "model": model}, headers=AUTH
        )
        assert r.status_code == 201, r.text
    assert (
        httpx.put(
            f"{a.root}/admin/prompts/support/labels/production", json={"version": 1}, headers=AUTH
        ).status_code
        == 200
    )

    # Version 1: 100 requests split over both processes, every 10th call of each one's mock fails.
    _until(lambda: _labels(b) == {"production": 1})  # b has reloaded
    time.sleep(0.3)  # and knows the key (keys.refresh_interval_s 0.2)
    statuses = [_ask(gw, key).status_code for gw in [a, b] * 50]
    assert sum(s >= 500 for s in statuses) == 10

    # Version 2 goes to production through b; a picks the move up from the shared store.
    assert (
        httpx.put(
            f"{b.root}/admin/prompts/support/labels/production", json={"version": 2}, headers=AUTH
        ).status_code
        == 200
    )
    _until(lambda: _labels(a) == {"production": 2})
    time.sleep(0.3)  # both have reloaded (reload_interval_s 0.1)

    # 99 requests of version 2 (every 5th call fails): 19 % errors, not yet 2 x 10 % over 100.
    errors = 0
    for i in range(99):
        r = _ask([a, b][i % 2], key)
        assert r.headers["x-tollhouse-prompt-version"] == "2"
        errors += r.status_code >= 500
    assert errors == 19
    time.sleep(1.0)  # several flush-and-check rounds in each process
    assert _labels(a) == {"production": 2}
    m = httpx.get(f"{a.root}/admin/prompts/support/versions/2/metrics", headers=AUTH).json()
    assert m["requests"] == 99 and m["errors"] == 19

    # The 100th: its 20th error — 20 % = 2 x version 1's 10 %: back to version 1.
    r = _ask(b, key)
    assert r.status_code == 502 and r.headers["x-tollhouse-prompt-version"] == "2"
    _until(lambda: _labels(a) == {"production": 1})
    history = httpx.get(f"{a.root}/admin/prompts/support", headers=AUTH).json()["history"]
    rollbacks = [e for e in history if e["actor"] == "rollback"]
    assert len(rollbacks) == 1  # moved once, though both processes check
    assert rollbacks[0]["version"] == 1 and rollbacks[0]["previous"] == 2
    assert "over 100 requests" in rollbacks[0]["reason"]
    _served(a, key, "1")
    _served(b, key, "1")
    _until(lambda: bool(_Hooks.received))
    assert _Hooks.received[0]["event"] == "prompt.rollback" and _Hooks.received[0]["from"] == 2
    assert "prompt rollback: support label production moved back from version 2 to 1" in a.log() + b.log()
