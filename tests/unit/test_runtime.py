"""The composition root: every part opened in order and closed once in reverse, a failure while opening
closes what was open, and the HTTP layer reaches state only through ``api.deps``."""

from __future__ import annotations

import ast
import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import mock_settings

import tollhouse
from tollhouse.api.openai import INGRESS as OPENAI
from tollhouse.app import INGRESSES, create_app
from tollhouse.caching.stage import ResponseCacheStage
from tollhouse.errors import StoreUnavailable
from tollhouse.guardrails.chain import GuardrailChain
from tollhouse.ledger.usage import UsageLedger
from tollhouse.pipeline.cache import NoCache
from tollhouse.pipeline.guard import NoGuards
from tollhouse.pipeline.retrieval import NoRetrieval
from tollhouse.rag.stage import RetrievalStage
from tollhouse.runtime import Runtime
from tollhouse.settings import ConfigError, Settings

ALL_PARTS = ["registry", "access", "ledger", "router", "guards", "cache", "rag", "telemetry", "idempotency"]


def full_settings(tmp_path: Path, **extra: Any) -> Settings:
    """Every optional part on: ledger, guardrails, exact cache (SQLite), on top of the mock models."""
    base = mock_settings().model_dump()
    base["ledger"] = {
        "enabled": True,
        "sqlite_path": str(tmp_path / "ledger.db"),
        "journal_dir": str(tmp_path / "journal"),
    }
    base["guardrails"] = {"enabled": True}
    base["cache"] = {"mode": "exact", "backend": "sqlite", "sqlite_path": str(tmp_path / "cache.db")}
    base["rag"] = {"sqlite_path": str(tmp_path / "rag.db")}
    for section, fields in extra.items():
        base[section] = {**base.get(section, {}), **fields}
    return Settings.model_validate(base)


def parts(caplog: pytest.LogCaptureFixture, verb: str) -> list[str]:
    return [r.part for r in caplog.records if r.name == "tollhouse.runtime" and r.msg == f"{verb} %s"]  # type: ignore[attr-defined]


def background_tasks() -> set[str]:
    return {t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("tollhouse-")}


async def test_every_part_is_closed_once_in_reverse_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tollhouse.runtime")
    before = background_tasks()
    async with Runtime.open(full_settings(tmp_path)) as rt:
        assert parts(caplog, "owning") == ALL_PARTS
        assert parts(caplog, "closing") == []
        # The gateway runs on the runtime's own parts, and the features that are on got real stages.
        gw = rt.gateway
        assert (gw.registry, gw.router, gw.ledger, gw.cache, gw.guards) == (
            rt.registry,
            rt.router,
            rt.ledger,
            rt.cache,
            rt.guards,
        )
        assert isinstance(rt.cache, ResponseCacheStage)
        assert isinstance(rt.guards, GuardrailChain)
        assert isinstance(rt.ledger, UsageLedger)
        assert isinstance(gw.retrieval, RetrievalStage) and rt.rag is not None
        assert {"tollhouse-key-cache", "tollhouse-ledger-writer"} <= background_tasks()
        assert not rt.draining
    assert rt.draining
    assert parts(caplog, "closing") == ALL_PARTS[::-1]
    assert background_tasks() == before  # the key cache poller and the ledger writer are stopped


async def test_features_that_are_off_get_the_pass_through_seams(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tollhouse.runtime")
    off = mock_settings().model_dump()
    off["guardrails"] = {"enabled": False}
    off["rag"] = {"enabled": False}
    async with Runtime.open(Settings.model_validate(off)) as rt:
        assert isinstance(rt.cache, NoCache)
        assert isinstance(rt.gateway.retrieval, NoRetrieval) and rt.rag is None
        assert isinstance(rt.guards, NoGuards)
        assert not isinstance(rt.ledger, UsageLedger)  # still priced, nothing kept
        assert rt.open_mode
    assert parts(caplog, "owning") == ["registry", "access", "router", "telemetry", "idempotency"]
    assert parts(caplog, "closing") == parts(caplog, "owning")[::-1]


async def test_a_failure_while_opening_closes_what_was_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG, logger="tollhouse.runtime")
    monkeypatch.delenv("TH_TEST_UNSET_LEDGER_DSN", raising=False)
    settings = full_settings(
        tmp_path, ledger={"backend": "postgres", "postgres_dsn_env": "TH_TEST_UNSET_LEDGER_DSN"}
    )
    before = background_tasks()
    with pytest.raises(ConfigError, match="TH_TEST_UNSET_LEDGER_DSN"):
        async with Runtime.open(settings):
            pytest.fail("the runtime must not open")
    assert parts(caplog, "owning") == ["registry", "access"]
    assert parts(caplog, "closing") == ["access", "registry"]
    assert background_tasks() == before  # the key cache started by access is stopped again


async def test_a_part_that_fails_half_way_is_closed_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tollhouse.runtime")
    (tmp_path / "not-a-dir").write_text("")
    settings = full_settings(tmp_path, cache={"sqlite_path": str(tmp_path / "not-a-dir" / "cache.db")})
    before = background_tasks()
    with pytest.raises(StoreUnavailable, match="exact cache") as err:
        async with Runtime.open(settings):
            pytest.fail("the runtime must not open")
    assert "not-a-dir" in err.value.cause  # the log and the operator see why
    opened = parts(caplog, "owning")
    assert opened == ALL_PARTS[: ALL_PARTS.index("cache") + 1]
    assert parts(caplog, "closing") == opened[::-1]
    assert background_tasks() == before


async def test_shared_state_on_redis_is_closed_in_reverse_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, redis_prefix: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="tollhouse.runtime")
    settings = full_settings(
        tmp_path,
        redis={"prefix": redis_prefix},
        limits={"backend": "redis"},
        budgets={"backend": "redis"},
        routing={"breaker": {"store": "redis"}},
        cache={"backend": "redis"},
        idempotency={"store": "redis"},
    )
    async with Runtime.open(settings) as rt:
        assert rt.router.shared is not None
        assert rt.access.concurrent
    assert parts(caplog, "closing") == ALL_PARTS[::-1]


def test_the_runtime_is_all_the_app_state_holds() -> None:
    app = create_app(mock_settings())
    with TestClient(app) as c:
        assert c.get("/health/ready").status_code == 200
        assert set(app.state._state) == {"runtime"}
        assert isinstance(app.state.runtime, Runtime)


def test_the_hot_routes_come_from_the_ingresses() -> None:
    assert OPENAI in INGRESSES
    assert set(OPENAI.hot_routes) == {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"}
    # Each hot route is also the ingress's FastAPI route for the same path (the one /docs and the
    # fallback path see), so both ways of reaching it run the same function.
    posts = {r.path: r.endpoint for r in OPENAI.router.routes if "POST" in getattr(r, "methods", ())}
    for path, endpoint in OPENAI.hot_routes.items():
        assert posts[path] is endpoint


def _reaches_app_state(tree: ast.AST) -> list[int]:
    """Lines that read the app's state: ``….app.state``, ``scope["app"]`` or ``getattr(….state, …)``."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "state":
            inner = node.value
            if isinstance(inner, ast.Attribute) and inner.attr == "app":
                lines.append(node.lineno)
            if isinstance(inner, ast.Subscript) and ast.unparse(inner.slice) == "'app'":
                lines.append(node.lineno)
        is_getattr = isinstance(node, ast.Call) and ast.unparse(node.func) == "getattr"
        if is_getattr and any(isinstance(a, ast.Attribute) and a.attr == "state" for a in ast.walk(node)):
            lines.append(node.lineno)
    return lines


def test_routes_reach_state_only_through_deps() -> None:
    api = Path(tollhouse.__file__).parent / "api"
    found = {
        str(path.relative_to(api)): _reaches_app_state(ast.parse(path.read_text()))
        for path in sorted(api.rglob("*.py"))
    }
    assert found.pop("deps.py")  # the one place that does
    assert {name: lines for name, lines in found.items() if lines} == {}
