"""Safer defaults at the HTTP edge (issue 12, defects 8 and 9): `/v1/models` lists only what the key may
use, every 401 names the Bearer scheme, and `/metrics` (which names models, deployments and key ids) is
for the admin while auth is on, unless `telemetry.metrics.public`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import mock_settings

from tollhouse.access.keys import KeyService, KeySpec
from tollhouse.app import create_app
from tollhouse.settings import Settings
from tollhouse.stores.build import key_store

ADMIN = "admin-secret-for-defaults"
AUTH = {"authorization": f"Bearer {ADMIN}"}


def settings(tmp_path: Path, *, admin: bool = True, **extra: Any) -> Settings:
    base = mock_settings(other={}, third={}).model_dump()
    base["keys"] = {"sqlite_path": str(tmp_path / "keys.db")}
    base["routing"] = {"groups": [{"name": "team-pool", "deployments": [{"model": "other"}]}]}
    if admin:
        base["auth"] = {"admin_key_env": "TH_DEFAULTS_ADMIN"}
    base.update(extra)
    return Settings.model_validate(base)


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TH_DEFAULTS_ADMIN", ADMIN)
    with TestClient(create_app(settings(tmp_path)), raise_server_exceptions=False) as c:
        yield c


def new_key(c: TestClient, **spec: Any) -> str:
    r = c.post("/admin/keys", json=spec, headers=AUTH)
    assert r.status_code == 201, r.text
    secret: str = r.json()["key"]
    return secret


def ids(c: TestClient, key: str) -> set[str]:
    r = c.get("/v1/models", headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    return {m["id"] for m in r.json()["data"]}


def test_models_list_only_what_the_key_may_use(client: TestClient) -> None:
    everything = ids(client, new_key(client))
    assert {"mock", "mock-alias", "other", "third", "team-pool"} <= everything
    limited = new_key(client, models=["mock-alias", "team-pool"])
    assert ids(client, limited) == {"mock-alias", "team-pool"}
    auth = {"authorization": f"Bearer {limited}"}
    assert client.get("/v1/models/team-pool", headers=auth).json()["id"] == "team-pool"
    r = client.get("/v1/models/third", headers=auth)  # exists, but not for this key: as if it did not
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = client.get("/v1/models/third", headers={"authorization": f"Bearer {new_key(client)}"})
    assert r.status_code == 200 and r.json()["id"] == "third"


def test_every_401_names_the_bearer_scheme(client: TestClient) -> None:
    chat = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}
    for r in (
        client.post("/v1/chat/completions", json=chat),
        client.post("/v1/chat/completions", json=chat, headers={"authorization": "Bearer th-wrong"}),
        client.get("/v1/models"),
        client.post("/v1/embeddings", json={"model": "mock", "input": "x"}),
        client.get("/admin/keys"),
        client.get("/metrics", headers={"authorization": "Bearer nope"}),
    ):
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert "www-authenticate" not in client.get("/health/live").headers


def test_metrics_need_the_admin_key_while_auth_is_on(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"authorization": f"Bearer {new_key(client)}"}).status_code == 401
    r = client.get("/metrics", headers=AUTH)
    assert r.status_code == 200 and "tollhouse_requests_total" in r.text


def test_metrics_public_when_configured_or_in_open_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TH_DEFAULTS_ADMIN", ADMIN)
    public = settings(tmp_path / "public", telemetry={"metrics": {"public": True}})
    with TestClient(create_app(public)) as c:
        assert c.get("/metrics").status_code == 200
    with TestClient(create_app(settings(tmp_path / "open", admin=False))) as c:
        assert c.get("/metrics").status_code == 200  # no admin key, no API key: loopback-only open mode


def test_metrics_with_api_keys_but_no_admin_key_are_refused(tmp_path: Path) -> None:
    s = settings(tmp_path, admin=False)

    async def create() -> None:
        store = key_store(s.keys)
        await store.open()
        try:
            await KeyService(store).create(KeySpec(name="only"))
        finally:
            await store.aclose()

    asyncio.run(create())
    with TestClient(create_app(s), raise_server_exceptions=False) as c:
        r = c.get("/metrics")
        assert r.status_code == 403
        assert "telemetry.metrics.public" in r.json()["error"]["message"]
