"""Two real gateway processes sharing the cache through Redis: an answer stored by one is served by the
other (JSON and stream; exact, and semantic through the shared log), tenants stay apart, and an
invalidation through one empties it for both."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import orjson
import pytest
from tests.support.gateway_server import GatewayProcess, gateway_server
from tests.support.stores import REDIS_URL, pg_schema, require_redis

pytestmark = pytest.mark.slow
ADMIN = "cache-replica-admin"
AUTH = {"authorization": f"Bearer {ADMIN}"}


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    require_redis()
    config = {
        "embedded": {"chat": False, "embeddings": False},
        # Every process's mock answers its first call and refuses the next (400, not retried): a 200
        # from the second process on a repeat can only come from the shared cache.
        "models": [
            {"name": "m1", "provider": "mock", "faults": ["ok", "status:400"]},
            {"name": "m2", "provider": "mock", "faults": ["ok", "status:400"]},
            {"name": "m3", "provider": "mock", "faults": ["ok", "status:400"]},
        ],
        "auth": {"admin_key_env": "TH_ADMIN"},
        "keys": {"backend": "postgres", "postgres_dsn_env": "TH_PG", "refresh_interval_s": 0.2},
        "cache": {"mode": "semantic", "backend": "redis", "semantic": {"backend": "redis"}},
        "redis": {"url": REDIS_URL, "prefix": f"th-test-{uuid.uuid4().hex[:12]}:"},
        "ledger": {"enabled": False},
    }
    with ExitStack() as stack:
        env = {"TH_ADMIN": ADMIN, "TH_PG": stack.enter_context(pg_schema())}
        a = stack.enter_context(gateway_server(config, env))
        b = stack.enter_context(gateway_server(config, env))
        yield a, b


def _key(gw: GatewayProcess) -> str:
    r = httpx.post(f"{gw.root}/admin/keys", json={"name": "c"}, headers=AUTH)
    assert r.status_code == 201, r.text
    secret: str = r.json()["key"]
    return secret


def _semantic_entries(gw: GatewayProcess) -> int:
    n: int = httpx.get(f"{gw.root}/v1/cache/stats", headers=AUTH).json()["process"]["semantic_entries"]
    return n


def _chat(gw: GatewayProcess, key: str, text: str, model: str = "m1", **kw: object) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}], **kw}
    for _ in range(50):  # the other process sees a new key within refresh_interval_s
        r = httpx.post(
            f"{gw.base_url}/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
        )
        if r.status_code != 401:
            return r
    return r


def test_an_answer_stored_by_one_process_is_served_by_the_other(
    pair: tuple[GatewayProcess, GatewayProcess],
) -> None:
    a, b = pair
    k1, k2 = _key(a), _key(a)
    first = _chat(a, k1, "shared question")
    assert first.status_code == 200 and first.headers["x-tollhouse-cache"] == "miss"
    hit = _chat(b, k1, "shared question")
    assert hit.status_code == 200, hit.text
    assert hit.headers["x-tollhouse-cache"] == "hit"
    assert hit.json()["choices"] == first.json()["choices"]
    stream = _chat(b, k1, "shared question", stream=True, stream_options={"include_usage": True})
    assert stream.headers["x-tollhouse-cache"] == "hit"
    events = [orjson.loads(x[6:]) for x in stream.text.splitlines() if x.startswith("data: {")]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    assert text == first.json()["choices"][0]["message"]["content"]
    assert events[-1]["usage"] == first.json()["usage"]
    # Another key is another tenant: it reaches the upstream (b's mock: its first call answers).
    other = _chat(b, k2, "shared question")
    assert other.status_code == 200 and other.headers["x-tollhouse-cache"] == "miss"


def test_invalidation_through_one_process_empties_the_shared_cache(
    pair: tuple[GatewayProcess, GatewayProcess],
) -> None:
    a, b = pair
    k = _key(a)
    _chat(a, k, "to be dropped", model="m2")
    assert _chat(b, k, "to be dropped", model="m2").headers["x-tollhouse-cache"] == "hit"
    r = httpx.post(f"{b.root}/admin/cache/invalidate", json={"model": "m2"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["removed"] == 1
    assert _chat(a, k, "to be dropped", model="m2").headers["x-tollhouse-cache"] == "miss"
    stats = httpx.get(f"{a.root}/v1/cache/stats", headers=AUTH).json()
    assert stats["process"]["backend"] == "redis"


def test_a_paraphrase_of_an_answer_stored_by_one_process_hits_on_the_other(
    pair: tuple[GatewayProcess, GatewayProcess],
) -> None:
    a, b = pair
    k = _key(a)
    before = _semantic_entries(b)
    first = _chat(a, k, "Is it safe to eat raw eggs?", model="m3")
    assert first.status_code == 200 and first.headers["x-tollhouse-cache"] == "miss"
    deadline = time.monotonic() + 5  # the entry reaches b's index through the Redis stream (~ms)
    while time.monotonic() < deadline:
        if _semantic_entries(b) > before:
            break
        time.sleep(0.02)
    r = _chat(b, k, "Is it safe to eat eggs raw?", model="m3")
    assert r.status_code == 200 and r.headers["x-tollhouse-cache"] == "semantic-hit", r.text
    assert r.json()["choices"] == first.json()["choices"]
    assert float(r.headers["x-tollhouse-cache-similarity"]) >= 0.95
