"""Routing state shared through the real Redis on 127.0.0.1:6379: circuit verdicts and the fleet-wide
half-open probe limit between routers, Idempotency-Key results between stores, and two real gateway
processes where one process's open circuit makes the other skip the deployment."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.support.gateway_server import GatewayProcess, gateway_server
from tests.support.routing_kit import Kit, group

from tollhouse.routing.shared import SharedBreakers
from tollhouse.settings import IdempotencySettings, RedisSettings
from tollhouse.stores.breakers import RedisBreakerState
from tollhouse.stores.build import idempotency_store
from tollhouse.stores.idempotency import RedisIdempotencyStore, StoredResponse

pytestmark = pytest.mark.slow
URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A fresh key prefix per test; its keys are deleted afterwards."""
    p = f"tollhouse-test:{uuid.uuid4().hex[:8]}:"
    yield p
    r = aioredis.Redis.from_url(URL)
    keys = [k async for k in r.scan_iter(f"{p}*")]
    if keys:
        await r.delete(*keys)
    await r.aclose()


async def eventually(check: Callable[[], bool], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def kit() -> Kit:
    return Kit(
        {"a": {"faults": ["status:500"]}, "b": {}},
        {
            "retry": {"max_retries": 1, "base_delay_s": 0},
            "breaker": {"failure_threshold": 2, "cooldown_s": 30, "store": "redis"},
            "groups": [group("g", "a", "b")],
        },
    )


async def test_open_circuit_and_probe_limit_are_shared(prefix: str) -> None:
    one, two = kit(), kit()
    cfg = RedisSettings(url=URL, prefix=prefix)
    s1 = await SharedBreakers.start(one.router, RedisBreakerState(cfg.url, cfg.prefix))
    s2 = await SharedBreakers.start(two.router, RedisBreakerState(cfg.url, cfg.prefix))
    try:
        for _ in range(2):
            await one.chat("g")
        assert one.circuit("a") == "open"
        await eventually(lambda: two.circuit("a") == "open")
        _, ctx = await two.chat("g")
        assert ctx.deployment == "b" and ctx.attempts == 1 and two.calls("a") == 0  # skipped unseen
        # After the cooldown both are half-open, but the fleet sends one probe, not one per process.
        one.clock.advance(30)
        two.clock.advance(30)
        claims = [await s.claim_probe("a") for s in (s1, s2, s1)]
        assert claims == [True, False, False]
        # A late joiner reads the open circuit at start-up.
        three = kit()
        s3 = await SharedBreakers.start(three.router, RedisBreakerState(cfg.url, cfg.prefix))
        assert three.circuit("a") == "open"
        await s3.aclose()
    finally:
        await s1.aclose()
        await s2.aclose()


async def test_probe_success_closes_the_circuit_everywhere(prefix: str) -> None:
    one, two = kit(), kit()
    cfg = RedisSettings(url=URL, prefix=prefix)
    s1 = await SharedBreakers.start(one.router, RedisBreakerState(cfg.url, cfg.prefix))
    s2 = await SharedBreakers.start(two.router, RedisBreakerState(cfg.url, cfg.prefix))
    try:
        for _ in range(2):
            await one.chat("g")
        await eventually(lambda: two.circuit("a") == "open")
        one.providers["a"]._faults._script = []  # type: ignore[attr-defined]  # "a" has recovered
        one.clock.advance(30)
        _, ctx = await one.chat("g")
        assert ctx.deployment == "a" and one.circuit("a") == "closed"
        await eventually(lambda: two.circuit("a") == "closed")
    finally:
        await s1.aclose()
        await s2.aclose()


async def test_idempotency_results_are_shared_and_duplicates_wait(prefix: str) -> None:
    cfg = IdempotencySettings(store="redis", wait_s=5)
    redis = RedisSettings(url=URL, prefix=prefix)
    first, second = idempotency_store(cfg, redis), idempotency_store(cfg, redis)
    assert isinstance(first, RedisIdempotencyStore)
    try:
        assert await first.begin("k") is True
        assert await second.begin("k") is False
        waiter = asyncio.create_task(second.wait("k", 5))
        await asyncio.sleep(0.05)
        stored = StoredResponse(200, [(b"content-type", b"application/json")], b'{"ok":1}', "fp")
        await first.finish("k", stored)
        assert await waiter == stored
        assert await second.get("k") == stored
        # A runner that stores nothing (its request failed) releases the waiters with None.
        assert await first.begin("k2") is True
        waiter = asyncio.create_task(second.wait("k2", 5))
        await first.finish("k2", None)
        assert await waiter is None and await second.begin("k2") is True
        await second.finish("k2", None)
    finally:
        await first.aclose()
        await second.aclose()


# ---- two real gateway processes ---------------------------------------------------------------------


def post(gw: GatewayProcess, model: str = "g") -> tuple[int, dict[str, str]]:
    data = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    req = urllib.request.Request(
        gw.base_url + "/chat/completions", data, {"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}


def circuit(gw: GatewayProcess, name: str) -> str:
    try:
        with urllib.request.urlopen(gw.root + "/health/ready", timeout=5) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = json.loads(e.read())
    state: str = body["checks"][name]["circuit"]["state"]
    return state


async def test_two_gateway_processes_share_breaker_state(prefix: str) -> None:
    config: dict[str, Any] = {
        "embedded": {"chat": False, "embeddings": False},
        "redis": {"url": URL, "prefix": prefix},
        "models": [
            {"name": "bad", "provider": "mock", "fail_status": 500},
            {"name": "good", "provider": "mock"},
        ],
        "routing": {
            "retry": {"max_retries": 1, "base_delay_s": 0},
            "breaker": {"failure_threshold": 3, "cooldown_s": 60, "store": "redis"},
            "groups": [{"name": "g", "deployments": [{"model": "bad"}, {"model": "good"}]}],
        },
    }
    with gateway_server(config) as a, gateway_server(config) as b:
        assert circuit(b, "bad") == "closed"
        for _ in range(3):
            status, headers = await asyncio.to_thread(post, a)
            assert status == 200 and headers["x-tollhouse-deployment"] == "good"
        assert await asyncio.to_thread(circuit, a, "bad") == "open"
        deadline = time.monotonic() + 5
        while await asyncio.to_thread(circuit, b, "bad") != "open":
            assert time.monotonic() < deadline, b.log()
            await asyncio.sleep(0.05)
        status, headers = await asyncio.to_thread(post, b)
        # B never saw "bad" fail, yet skips it: one attempt, served by "good".
        assert status == 200 and headers["x-tollhouse-deployment"] == "good"
        assert "x-tollhouse-attempts" not in headers
