"""Admin inputs are bounded (issue 12, defect 6): budgets and limits on `POST` / `PATCH /admin/keys` are
finite, positive and at most a sane maximum (a 400 naming the field, never a key that breaks every request
it makes), and a key stored before these bounds existed still serves instead of failing with a 500."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import mock_settings

from tollhouse.app import create_app
from tollhouse.settings import Settings
from tollhouse.stores.build import key_store

ADMIN = "admin-secret-for-bounds"
AUTH = {"authorization": f"Bearer {ADMIN}"}
PRICE = {"input_per_1m": 1.0, "output_per_1m": 2.0}


def settings(tmp_path: Path) -> Settings:
    base = mock_settings(priced={"pricing": PRICE}).model_dump()
    base["keys"] = {"sqlite_path": str(tmp_path / "keys.db"), "refresh_interval_s": 0.05}
    base["auth"] = {"admin_key_env": "TH_BOUNDS_ADMIN"}
    return Settings.model_validate(base)


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TH_BOUNDS_ADMIN", ADMIN)
    with TestClient(create_app(settings(tmp_path)), raise_server_exceptions=False) as c:
        yield c


def chat(c: TestClient, key: str) -> Any:
    body = {"model": "priced", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 5}
    return c.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"daily_usd": 1e308}, "daily_usd"),  # was 201, then every request with the key was a 500
        ({"monthly_usd": 1e10}, "monthly_usd"),
        ({"daily_usd": 0}, "daily_usd"),
        ({"daily_usd": -5}, "daily_usd"),
        ({"rpm": 10**12}, "rpm"),
        ({"tpm": 10**15}, "tpm"),
        ({"model_limits": {"priced": {"tpm": 10**15}}}, "model_limits.priced.tpm"),
        ({"model_limits": {"priced": {"rpm": 0}}}, "model_limits.priced.rpm"),
        # JSON booleans are not numbers: `false` was stored as an expiry of 0 (the key refused at once)
        ({"expires_at": False}, "expires_at"),
        ({"expires_at": -1}, "expires_at"),
        ({"rpm": True}, "rpm"),
        ({"daily_usd": True}, "daily_usd"),
        ({"model_limits": {"priced": {"tpm": True}}}, "model_limits.priced.tpm"),
        ({"rpm": "60"}, "rpm"),
    ],
)
def test_out_of_bounds_budgets_and_limits_are_400_naming_the_field(
    client: TestClient, body: dict[str, Any], param: str
) -> None:
    r = client.post("/admin/keys", json=body, headers=AUTH)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and param in r.json()["error"]["message"]
    created = client.post("/admin/keys", json={"name": "ok"}, headers=AUTH).json()
    r = client.patch(f"/admin/keys/{created['id']}", json=body, headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["param"] == param


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN"])
def test_non_finite_budgets_are_refused(client: TestClient, literal: str) -> None:
    r = client.post(
        "/admin/keys",
        content=f'{{"daily_usd": {literal}}}'.encode(),
        headers={**AUTH, "content-type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "daily_usd"


def test_the_largest_budget_is_accepted_and_serves(client: TestClient) -> None:
    created = client.post("/admin/keys", json={"daily_usd": 1e9, "monthly_usd": 1e9}, headers=AUTH)
    assert created.status_code == 201, created.text
    assert chat(client, created.json()["key"]).status_code == 200


def test_a_key_stored_with_an_absurd_budget_still_serves(client: TestClient, tmp_path: Path) -> None:
    """A key written before budgets were bounded (or straight into the store) must not fail each request
    with an OverflowError: the budget saturates to "no practical limit"."""
    created = client.post("/admin/keys", json={"daily_usd": 5}, headers=AUTH).json()

    async def widen() -> None:
        store = key_store(settings(tmp_path).keys)
        await store.open()
        try:
            key = await store.get(created["id"])
            assert key is not None
            key.daily_usd = 1e308
            key.monthly_usd = float("inf")
            await store.put(key)
        finally:
            await store.aclose()

    asyncio.run(widen())
    time.sleep(0.3)  # every process reloads keys within keys.refresh_interval_s
    assert client.get(f"/admin/keys/{created['id']}", headers=AUTH).json()["daily_usd"] == 1e308
    r = chat(client, created["key"])
    assert r.status_code == 200, r.text


def test_numbers_keep_working(client: TestClient) -> None:
    """Integers where a float is expected and integral floats where an integer is expected stay accepted."""
    expiry = int(time.time()) + 3600
    body = {
        "rpm": 60,
        "daily_usd": 5,
        "monthly_usd": 20.5,
        "expires_at": expiry,
        "model_limits": {"priced": {"tpm": 1000.0}},
    }
    created = client.post("/admin/keys", json=body, headers=AUTH)
    assert created.status_code == 201, created.text
    got = created.json()
    assert (got["rpm"], got["daily_usd"], got["expires_at"]) == (60, 5.0, float(expiry))
    assert chat(client, got["key"]).status_code == 200
    cleared = client.patch(f"/admin/keys/{got['id']}", json={"expires_at": None, "rpm": None}, headers=AUTH)
    assert (
        cleared.status_code == 200 and cleared.json()["expires_at"] is None and cleared.json()["rpm"] is None
    )


def test_a_whole_body_check_names_the_problem_not_a_field(client: TestClient) -> None:
    r = client.post("/admin/cache/invalidate", json={"all": False}, headers=AUTH)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] is None and "None" not in err["message"]
    assert err["message"].startswith("Invalid request body: name key_id, user, team and/or model")


def test_a_405_lists_every_method_of_the_path(client: TestClient) -> None:
    r = client.put("/admin/keys", json={}, headers=AUTH)
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
    r = client.request("TRACE", "/admin/keys/key_x", headers=AUTH)
    assert r.status_code == 405 and r.headers["allow"] == "GET, PATCH"
