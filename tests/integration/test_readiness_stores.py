"""``/health/ready`` checks the Redis server and the PostgreSQL database the settings use, with latency."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import mock_settings
from tests.support.mock_upstream import free_port
from tests.support.stores import REDIS_URL

from tollhouse.app import create_app
from tollhouse.settings import Settings
from tollhouse.stores.build import network_stores
from tollhouse.stores.probe import redact


def _settings(redis_url: str, prefix: str, pg_env: str | None = None) -> Settings:
    base: dict[str, Any] = mock_settings().model_dump()
    base["limits"]["backend"] = "redis"
    base["budgets"]["backend"] = "redis"
    base["redis"] = {"url": redis_url, "prefix": prefix}
    if pg_env:
        base["ledger"] = {"enabled": True, "backend": "postgres", "postgres_dsn_env": pg_env}
    return Settings.model_validate(base)


def test_ready_shows_redis_and_database_with_latency(
    pg_dsn: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TH_TEST_LEDGER_DSN", pg_dsn)
    with TestClient(create_app(_settings(REDIS_URL, redis_prefix, "TH_TEST_LEDGER_DSN"))) as c:
        r = c.get("/health/ready")
    assert r.status_code == 200, r.text
    checks = r.json()["checks"]
    assert checks["redis"]["status"] == "ok"
    assert checks["redis"]["used_by"] == ["limits", "budgets"]
    assert checks["redis"]["latency_ms"] > 0
    assert checks["database"]["status"] == "ok"
    assert checks["database"]["used_by"] == ["ledger"]
    assert checks["database"]["detail"] == "SELECT 1"
    assert checks["mock"]["status"] == "ok"  # deployments are still there


def test_unreachable_redis_makes_the_gateway_not_ready(redis_prefix: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with TestClient(create_app(_settings(dead, redis_prefix)), raise_server_exceptions=False) as c:
        r = c.get("/health/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["status"] == "down"
    assert "ConnectionError" in body["checks"]["redis"]["detail"]


def test_no_network_store_no_store_check() -> None:
    with TestClient(create_app(mock_settings())) as c:
        checks = c.get("/health/ready").json()["checks"]
    assert set(checks) == {"mock"}


def test_password_never_shown() -> None:
    assert redact("postgresql://app:s3cret@db:5432/tollhouse") == "postgresql://app:***@db:5432/tollhouse"
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_one_database_entry_per_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A_DSN", "postgresql://a@h/x")
    monkeypatch.setenv("B_DSN", "postgresql://b@h/y")
    base: dict[str, Any] = mock_settings().model_dump()
    base["keys"] = {"backend": "postgres", "postgres_dsn_env": "A_DSN"}
    base["ledger"] = {"enabled": True, "backend": "postgres", "postgres_dsn_env": "B_DSN"}
    names = [t.name for t in network_stores(Settings.model_validate(base))]
    assert names == ["database:A_DSN", "database:B_DSN"]


def test_stored_prompts_on_the_network_are_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P_DSN", "postgresql://p@h/z")
    base: dict[str, Any] = mock_settings().model_dump()
    prompts = {"enabled": True, "backend": "postgres", "postgres_dsn_env": "P_DSN", "counters": "redis"}
    base["prompts"] = prompts
    targets = {t.name: t.used_by for t in network_stores(Settings.model_validate(base))}
    assert targets == {"redis": ("prompts.counters",), "database": ("prompts",)}
    base["prompts"] = {**prompts, "enabled": False}
    assert network_stores(Settings.model_validate(base)) == []
