"""Issue 12, defects 4 and 8c: degrade, never 500. A real gateway process whose PostgreSQL (through a proxy
the test takes down) or Redis (a throwaway ``redis-server`` the test stops) goes away: reports, stats and the
admin API answer 503 naming the store, recover by themselves, model requests keep being recorded (the
journal holds them), and each outage is logged once with its cause and once when it ends."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest
from tests.support.gateway_server import GatewayProcess, gateway_server
from tests.support.servers import ThreadedProxy, ThrowawayRedis, proxied

pytestmark = pytest.mark.slow
ADMIN = "sk-admin-outage-test"
AUTH = {"authorization": f"Bearer {ADMIN}"}
BODY = {"model": "priced", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5}
PRICE = {"input_per_1m": 1000, "output_per_1m": 1000}
REPORTS = ["/v1/costs", "/admin/usage", "/v1/cache/stats"]


def _config(tmp: str, **extra: Any) -> dict[str, Any]:
    return {
        "embedded": {"chat": False, "embeddings": False},
        "models": [{"name": "priced", "provider": "mock", "reply": "one two three", "pricing": PRICE}],
        "auth": {"admin_key_env": "TH_ADMIN"},
        "keys": {"sqlite_path": f"{tmp}/keys.db"},
        "ledger": {
            "backend": "postgres",
            "postgres_dsn_env": "TH_LEDGER",
            "journal_dir": f"{tmp}/journal",
            "flush_interval_s": 0.05,
            "retry_interval_s": 0.2,
        },
        **extra,
    }


def _key(gw: GatewayProcess) -> dict[str, str]:
    r = httpx.post(f"{gw.root}/admin/keys", json={"name": "t"}, headers=AUTH)
    assert r.status_code == 201, r.text
    return {"authorization": f"Bearer {r.json()['key']}"}


def _get(gw: GatewayProcess, path: str) -> httpx.Response:
    return httpx.get(gw.root + path, headers=AUTH, timeout=15)


def _assert_store_503(r: httpx.Response, store: str) -> None:
    assert r.status_code == 503, r.text
    err = r.json()["error"]
    assert err["code"] == "store_unavailable" and store in err["message"], err
    assert int(r.headers["retry-after"]) >= 1


def _eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def _no_tracebacks(gw: GatewayProcess) -> None:
    log = gw.log()
    at = log.find("Traceback")
    assert at < 0 and "AttributeError" not in log, log[max(0, at - 1500) : at + 2500]


def test_reports_answer_503_during_a_ledger_outage_and_recover_losing_nothing(
    pg_dsn: str, pg_proxy: ThreadedProxy, tmp_path: Any
) -> None:
    env = {"TH_ADMIN": ADMIN, "TH_LEDGER": proxied(pg_dsn, pg_proxy)}
    with gateway_server(_config(str(tmp_path)), env) as gw:
        key = _key(gw)
        for _ in range(3):
            assert httpx.post(f"{gw.base_url}/chat/completions", json=BODY, headers=key).status_code == 200
        _eventually(lambda: _get(gw, "/v1/costs").json().get("total_requests") == 3)

        pg_proxy.down()
        for path in REPORTS:
            _assert_store_503(_get(gw, path), "usage ledger")
        # Model requests are served and journaled meanwhile.
        for _ in range(4):
            assert httpx.post(f"{gw.base_url}/chat/completions", json=BODY, headers=key).status_code == 200
        _assert_store_503(_get(gw, "/v1/costs"), "usage ledger")

        pg_proxy.up()
        _eventually(lambda: _get(gw, "/v1/costs").json().get("total_requests") == 7)  # nothing lost
        for path in REPORTS:
            assert _get(gw, path).status_code == 200
        _no_tracebacks(gw)
        log = gw.log()
        assert log.count("usage ledger database unavailable") == 1, log[-3000:]
        assert "usage ledger database available again" in log


def test_a_gateway_started_during_the_outage_serves_reports_once_the_database_is_back(
    pg_dsn: str, pg_proxy: ThreadedProxy, tmp_path: Any
) -> None:
    env = {"TH_ADMIN": ADMIN, "TH_LEDGER": proxied(pg_dsn, pg_proxy)}
    pg_proxy.down()
    with gateway_server(_config(str(tmp_path)), env) as gw:  # starts although the ledger is unreachable
        for path in REPORTS:
            _assert_store_503(_get(gw, path), "usage ledger")
        pg_proxy.up()
        # No model request in between: the next report reconnects by itself.
        r = _get(gw, "/v1/costs")
        assert r.status_code == 200, r.text
        assert r.json()["total_requests"] == 0
        assert _get(gw, "/v1/cache/stats").status_code == 200
        _no_tracebacks(gw)


def test_admin_key_routes_answer_503_while_the_key_store_is_down(
    pg_dsn: str, pg_proxy: ThreadedProxy, tmp_path: Any
) -> None:
    config = _config(
        str(tmp_path),
        keys={"backend": "postgres", "postgres_dsn_env": "TH_KEYS", "refresh_interval_s": 0.2},
        ledger={"enabled": False},
    )
    env = {"TH_ADMIN": ADMIN, "TH_KEYS": proxied(pg_dsn, pg_proxy)}
    with gateway_server(config, env) as gw:
        key = _key(gw)
        key_id = httpx.get(f"{gw.root}/admin/keys", headers=AUTH).json()["data"][0]["id"]
        pg_proxy.down()
        _assert_store_503(httpx.post(f"{gw.root}/admin/keys", json={"name": "x"}, headers=AUTH), "key store")
        r = httpx.patch(f"{gw.root}/admin/keys/{key_id}", json={"rpm": 5}, headers=AUTH)
        _assert_store_503(r, "key store")
        _assert_store_503(httpx.get(f"{gw.root}/admin/keys", headers=AUTH), "key store")
        # Keys loaded before the outage still authenticate.
        assert httpx.post(f"{gw.base_url}/chat/completions", json=BODY, headers=key).status_code == 200
        time.sleep(0.6)  # a few key-cache polls fail: one warning for all of them
        pg_proxy.up()
        _eventually(lambda: httpx.get(f"{gw.root}/admin/keys", headers=AUTH).status_code == 200)
        assert httpx.post(f"{gw.root}/admin/keys", json={"name": "y"}, headers=AUTH).status_code == 201
        _eventually(lambda: "key store available again" in gw.log())
        _no_tracebacks(gw)
        assert gw.log().count("key store unavailable") == 1


@contextmanager
def _redis_gateway(redis: ThrowawayRedis, tmp: str) -> Iterator[tuple[GatewayProcess, dict[str, str]]]:
    config = _config(
        tmp,
        ledger={"enabled": False},
        limits={"backend": "redis", "on_store_error": "open"},
        budgets={"backend": "redis", "on_store_error": "open"},
        cache={"mode": "exact", "backend": "redis", "sampled": True},
        routing={"breaker": {"store": "redis"}},
        redis={"url": redis.url, "prefix": "th:"},
    )
    with gateway_server(config, {"TH_ADMIN": ADMIN}) as gw:
        r = httpx.post(f"{gw.root}/admin/keys", json={"rpm": 100000, "daily_usd": 1000}, headers=AUTH)
        assert r.status_code == 201, r.text
        yield gw, {"authorization": f"Bearer {r.json()['key']}"}


def _warnings(gw: GatewayProcess) -> list[dict[str, Any]]:
    lines = [orjson.loads(x) for x in gw.log().splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("level") == "warning"]


def test_a_redis_outage_is_logged_once_per_store_and_its_end_once(
    throwaway_redis: ThrowawayRedis, tmp_path: Any
) -> None:
    with _redis_gateway(throwaway_redis, str(tmp_path)) as (gw, key):
        with httpx.Client(base_url=gw.base_url, headers=key, timeout=15) as c:
            assert c.post("/chat/completions", json=BODY).status_code == 200
            throwaway_redis.stop()
            for i in range(60):  # fail-open: every request is still served
                body = {**BODY, "messages": [{"role": "user", "content": f"q{i}"}]}
                assert c.post("/chat/completions", json=body).status_code == 200
            throwaway_redis.start()
            for i in range(5):
                body = {**BODY, "messages": [{"role": "user", "content": f"after{i}"}]}
                assert c.post("/chat/completions", json=body).status_code == 200
        _eventually(lambda: "rate limit store available again" in gw.log())
        warnings = [w for w in _warnings(gw) if w.get("store")]
        stores = [w["store"] for w in warnings]
        # One line per store for 60 requests (was one per request), each naming its cause.
        assert sorted(set(stores)) == sorted(stores), stores
        assert {"rate limit store", "budget store", "exact cache store (redis)"} <= set(stores)
        assert all(w["cause"] for w in warnings)
        log = gw.log()
        for store in ("rate limit store", "budget store", "exact cache store (redis)"):
            assert log.count(f"{store} available again") == 1, store
        _no_tracebacks(gw)


def test_cache_admin_routes_and_idempotency_answer_503_while_redis_is_down(
    throwaway_redis: ThrowawayRedis, tmp_path: Any
) -> None:
    config = _config(
        str(tmp_path),
        ledger={"enabled": False},
        cache={"mode": "exact", "backend": "redis"},
        idempotency={"store": "redis"},
        redis={"url": throwaway_redis.url, "prefix": "th:"},
    )
    with gateway_server(config, {"TH_ADMIN": ADMIN}) as gw:
        key = _key(gw)
        throwaway_redis.stop()
        _assert_store_503(_get(gw, "/v1/cache/stats"), "exact cache")
        r = httpx.post(f"{gw.root}/admin/cache/invalidate", json={"all": True}, headers=AUTH)
        _assert_store_503(r, "exact cache")
        # An Idempotency-Key asks for at-most-once: refused rather than run without the guarantee.
        headers = {**key, "idempotency-key": "k-1"}
        r = httpx.post(f"{gw.base_url}/chat/completions", json=BODY, headers=headers, timeout=15)
        _assert_store_503(r, "idempotency store")
        # Without one, requests are served (the cache fails open).
        assert httpx.post(f"{gw.base_url}/chat/completions", json=BODY, headers=key).status_code == 200
        throwaway_redis.start()
        _eventually(lambda: _get(gw, "/v1/cache/stats").status_code == 200)
        r = httpx.post(f"{gw.base_url}/chat/completions", json=BODY, headers=headers, timeout=15)
        assert r.status_code == 200, r.text
        _no_tracebacks(gw)
