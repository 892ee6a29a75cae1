"""Keys, rate limits, cost and the usage ledger through the HTTP API (in-process app, mock models)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from tests.conftest import mock_settings

from tollhouse.app import create_app
from tollhouse.settings import Settings

ADMIN = "admin-secret-for-tests"
PRICE = {"input_per_1m": 1_000_000, "output_per_1m": 2_000_000}  # $1 per prompt token, $2 per output token


def access_settings(tmp_path: Path, admin: bool = True, **extra: Any) -> Settings:
    base = mock_settings(
        priced={"reply": "one two three", "pricing": PRICE},
        broken={"fail_status": 500},
        other={},
    ).model_dump()
    base["keys"] = {"sqlite_path": str(tmp_path / "keys.db")}
    base["ledger"] = {
        "enabled": True,
        "sqlite_path": str(tmp_path / "ledger.db"),
        "journal_dir": str(tmp_path / "journal"),
        "flush_interval_s": 0.05,
    }
    if admin:
        base["auth"] = {"admin_key_env": "TH_TEST_ADMIN"}
    base.update(extra)
    return Settings.model_validate(base)


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TH_TEST_ADMIN", ADMIN)
    with TestClient(create_app(access_settings(tmp_path)), raise_server_exceptions=False) as c:
        yield c


def admin(c: TestClient, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    r = c.request(method, path, json=body, headers={"authorization": f"Bearer {ADMIN}"})
    assert r.status_code < 300, r.text
    return r.json()


def chat(c: TestClient, key: str | None, model: str = "priced", **kw: Any) -> Any:
    headers = {} if key is None else {"authorization": f"Bearer {key}"}
    body = {"model": model, "messages": [{"role": "user", "content": "hello there"}], **kw}
    return c.post("/v1/chat/completions", json=body, headers=headers)


def test_key_lifecycle(client: TestClient) -> None:
    created = admin(client, "POST", "/admin/keys", {"name": "ci", "user": "alice", "team": "eng"})
    secret = created["key"]
    assert secret.startswith("th-") and len(secret) > 40 and "hash" not in created
    assert created["prefix"] == secret[:11]
    listed = admin(client, "GET", "/admin/keys")["data"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0] and "hash" not in listed[0]
    assert chat(client, secret).status_code == 200
    r = client.post(
        "/v1/chat/completions",
        json={"model": "priced", "messages": [{"role": "user", "content": "x"}]},
        headers={"x-api-key": secret},
    )
    assert r.status_code == 200
    assert chat(client, "th-wrong").status_code == 401
    assert chat(client, None).status_code == 401

    updated = admin(client, "PATCH", f"/admin/keys/{created['id']}", {"models": ["other"]})
    assert updated["models"] == ["other"] and updated["user"] == "alice"
    r = chat(client, secret)
    assert r.status_code == 403 and r.json()["error"]["code"] == "model_not_allowed"
    assert chat(client, secret, model="other").status_code == 200

    rotated = admin(client, "POST", f"/admin/keys/{created['id']}/rotate")
    assert rotated["id"] == created["id"] and rotated["key"] != secret
    assert chat(client, secret, model="other").status_code == 401
    assert chat(client, rotated["key"], model="other").status_code == 200

    admin(client, "POST", f"/admin/keys/{created['id']}/revoke")
    r = chat(client, rotated["key"], model="other")
    assert r.status_code == 401 and r.json()["error"]["code"] == "key_revoked"
    got = admin(client, "GET", f"/admin/keys/{created['id']}")
    assert got["revoked_at"] is not None and got["last_used_at"] is None  # written back in batches


def test_admin_api_needs_the_admin_key(client: TestClient, tmp_path: Path) -> None:
    assert client.get("/admin/keys").status_code == 401
    assert client.get("/admin/keys", headers={"authorization": "Bearer nope"}).status_code == 401
    assert (
        client.get("/admin/keys/key_missing", headers={"authorization": f"Bearer {ADMIN}"}).status_code == 404
    )
    bad = client.post("/admin/keys", json={"rpm": -1}, headers={"authorization": f"Bearer {ADMIN}"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "rpm"
    with TestClient(create_app(access_settings(tmp_path / "open", admin=False))) as c:
        assert c.get("/admin/keys").status_code == 403


def test_open_mode_until_the_first_key(tmp_path: Path) -> None:
    settings = access_settings(tmp_path, admin=False)
    with TestClient(create_app(settings)) as c:
        assert chat(c, None).status_code == 200
        assert chat(c, "sk-anything").status_code == 200  # SDKs always send some key
        assert c.get("/v1/costs").status_code == 200
    import asyncio

    from tollhouse.access.keys import KeyService, KeySpec
    from tollhouse.stores.build import key_store

    async def make() -> str:
        store = key_store(settings.keys)
        await store.open()
        secret, _ = await KeyService(store).create(KeySpec(name="first"))
        await store.aclose()
        return secret

    secret = asyncio.run(make())
    with TestClient(create_app(settings)) as c:
        assert chat(c, None).status_code == 401
        assert chat(c, secret).status_code == 200


def test_rpm_limit_429_with_openai_headers(client: TestClient) -> None:
    key = admin(client, "POST", "/admin/keys", {"rpm": 3, "tpm": 10_000})["key"]
    r = chat(client, key, max_tokens=10)
    assert r.status_code == 200
    assert r.headers["x-ratelimit-limit-requests"] == "3"
    assert r.headers["x-ratelimit-remaining-requests"] == "2"
    assert r.headers["x-ratelimit-limit-tokens"] == "10000"
    assert int(r.headers["x-ratelimit-remaining-tokens"]) < 10_000
    assert r.headers["x-ratelimit-reset-requests"].endswith("s")
    assert chat(client, key).status_code == 200
    assert chat(client, key).status_code == 200
    r = chat(client, key)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(r.headers["retry-after"]) <= 20
    assert r.headers["x-ratelimit-remaining-requests"] == "0"


def test_tokens_reserved_from_the_estimate_and_settled(client: TestClient) -> None:
    key = admin(client, "POST", "/admin/keys", {"tpm": 1000})["key"]
    r = chat(client, key, max_tokens=2000)
    assert r.status_code == 429 and r.json()["error"]["code"] == "tokens_exceed_limit"
    # Each request reserves prompt + max_tokens (~ 600) but uses ~ 5: settlement gives the rest back,
    # so many requests fit where two reservations alone would not.
    for _ in range(5):
        assert chat(client, key, max_tokens=600).status_code == 200


def test_per_model_limit(client: TestClient) -> None:
    body = {"model_limits": {"other": {"rpm": 1}}}
    key = admin(client, "POST", "/admin/keys", body)["key"]
    assert chat(client, key, model="other").status_code == 200
    assert chat(client, key, model="other").status_code == 429
    assert chat(client, key, model="priced").status_code == 200


def _records(client: TestClient) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:
        rows = admin(client, "GET", "/admin/usage?group_by=model")
        if rows["totals"]["requests"] >= 1 or time.monotonic() > deadline:
            return list(rows["data"])
        time.sleep(0.05)


def test_cost_header_ledger_and_reports(client: TestClient) -> None:
    key = admin(client, "POST", "/admin/keys", {"user": "alice", "team": "eng", "rpm": 2})["key"]
    r = chat(client, key)
    assert r.status_code == 200
    usage = r.json()["usage"]
    expected = usage["prompt_tokens"] * 1 + usage["completion_tokens"] * 2
    assert float(r.headers["x-tollhouse-cost-usd"]) == pytest.approx(expected)
    stream = chat(client, key, stream=True)  # same request streamed: same cost in the ledger
    assert stream.status_code == 200 and "x-tollhouse-cost-usd" not in stream.headers
    assert chat(client, key).status_code == 429  # blocked: recorded, cost 0
    assert chat(client, key, model="broken").status_code == 429
    assert chat(client, ADMIN, model="broken").status_code == 502  # failed upstream: recorded
    deadline = time.monotonic() + 5
    while True:
        usage_rows = admin(client, "GET", "/admin/usage?group_by=model")
        if usage_rows["totals"]["requests"] >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    by_model = {row["model"]: row for row in usage_rows["data"]}
    assert by_model["priced"]["requests"] == 3
    assert by_model["priced"]["cost_usd"] == pytest.approx(2 * expected)
    assert by_model["priced"]["errors"] == 1
    assert by_model["broken"]["errors"] == 2
    by_user = {row["user"]: row for row in admin(client, "GET", "/admin/usage?group_by=user")["data"]}
    assert by_user["alice"]["requests"] == 4
    costs = admin(client, "GET", "/v1/costs")
    assert costs["total_requests"] == 5
    assert costs["total_cost_usd"] == pytest.approx(2 * expected)
    assert costs["cost_by_model"]["priced"] == pytest.approx(2 * expected)
    assert costs["top_users"][0]["user"] == "alice"
    assert costs["average_cost_per_request_usd"] == pytest.approx(2 * expected / 5)
    assert client.get("/v1/costs", headers={"authorization": f"Bearer {key}"}).status_code == 401


def test_streamed_and_plain_requests_cost_the_same(client: TestClient) -> None:
    plain = chat(client, ADMIN)
    stream = chat(client, ADMIN, stream=True)
    assert stream.status_code == 200
    assert orjson.loads(plain.content)["usage"]["total_tokens"] > 0
    # The stream's cost comes as an SSE comment just before [DONE] (its headers left before usage).
    lines = [x for x in stream.text.splitlines() if x]
    assert lines[-1] == "data: [DONE]"
    assert lines[-2] == f": x-tollhouse-cost-usd={plain.headers['x-tollhouse-cost-usd']}"
    deadline = time.monotonic() + 5
    while True:
        rows = admin(client, "GET", "/admin/usage?group_by=model")["data"]
        if (rows and rows[0]["requests"] == 2) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert rows[0]["cost_usd"] == pytest.approx(2 * float(plain.headers["x-tollhouse-cost-usd"]))
    assert rows[0]["unknown_cost"] == 0


def test_team_budget_blocks_with_402_and_settles_to_actual_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TH_TEST_ADMIN", ADMIN)
    # Worst case of one request: ~4 prompt tokens at $1 + 20 output tokens at $2 = ~$44; actual ~$11.
    settings = access_settings(
        tmp_path, budgets={"exceeded_status": 402, "teams": {"eng": {"daily_usd": 100}}}
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        key = admin(c, "POST", "/admin/keys", {"team": "eng"})["key"]
        other = admin(c, "POST", "/admin/keys", {"team": "ops"})["key"]
        costs = []
        while True:
            r = chat(c, key, max_tokens=20)
            if r.status_code != 200:
                break
            costs.append(float(r.headers["x-tollhouse-cost-usd"]))
        assert r.status_code == 402 and r.json()["error"]["code"] == "budget_exceeded"
        # Settlement returned each reservation's unused part, so more requests fit than worst cases would.
        assert len(costs) > 100 // 44
        assert 100 - 44 <= sum(costs) <= 100
        assert chat(c, other, max_tokens=20).status_code == 200  # another team is not affected


def test_budget_downgrade_routes_to_the_cheaper_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TH_TEST_ADMIN", ADMIN)
    budgets = {"on_exceeded": "downgrade", "downgrade_to": "other"}  # "other" is free
    with TestClient(
        create_app(access_settings(tmp_path, budgets=budgets)), raise_server_exceptions=False
    ) as c:
        key = admin(c, "POST", "/admin/keys", {"daily_usd": 50})["key"]
        first = chat(c, key, max_tokens=20)
        assert first.status_code == 200 and first.headers["x-tollhouse-deployment"] == "priced"
        served = [chat(c, key, max_tokens=20) for _ in range(6)]
        assert all(r.status_code == 200 for r in served)
        assert served[-1].headers["x-tollhouse-deployment"] == "other"
        assert served[-1].headers["x-tollhouse-route"] == "budget-downgrade:other"
        assert served[-1].json()["model"] == "priced"  # the client sees the name it asked for
        assert float(served[-1].headers["x-tollhouse-cost-usd"]) == 0


def test_downgrade_target_must_exist(tmp_path: Path) -> None:
    from tollhouse.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match="downgrade_to"):
        load_settings(budgets={"on_exceeded": "downgrade", "downgrade_to": "nope"})
    with pytest.raises(ConfigError, match="downgrade_to"):
        load_settings(budgets={"on_exceeded": "downgrade"})


def test_emergency_mode_routes_to_the_cheap_model_and_caps_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TH_TEST_ADMIN", ADMIN)
    emergency = {"daily_spend_usd": 30, "model": "other", "max_input_tokens": 50, "check_interval_s": 0.02}
    with TestClient(
        create_app(access_settings(tmp_path, emergency=emergency)), raise_server_exceptions=False
    ) as c:
        first = chat(c, ADMIN)  # ~$11 each at these prices
        assert first.status_code == 200 and first.headers["x-tollhouse-deployment"] == "priced"
        for _ in range(3):
            assert chat(c, ADMIN).status_code == 200
        deadline = time.monotonic() + 5
        while True:
            r = chat(c, ADMIN)
            if r.headers.get("x-tollhouse-deployment") == "other" or time.monotonic() > deadline:
                break
            time.sleep(0.03)
        assert r.status_code == 200 and r.headers["x-tollhouse-route"] == "emergency-downgrade:other"
        big = c.post(
            "/v1/chat/completions",
            json={"model": "priced", "messages": [{"role": "user", "content": "word " * 400}]},
            headers={"authorization": f"Bearer {ADMIN}"},
        )
        assert big.status_code == 400 and big.json()["error"]["code"] == "emergency_input_cap"
