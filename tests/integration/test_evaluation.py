"""Evaluation records and feedback, end to end against real SQLite and PostgreSQL: a request's record is
written in the background, ``POST /v1/feedback`` attaches to it, both join on the request id, and
retention purges old rows. No content is stored."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import mock_settings
from tests.support.stores import pg_schema

from tollhouse.app import create_app
from tollhouse.settings import Settings
from tollhouse.stores.evaluation import EvalRecord, EvalStore, Feedback, PostgresEvalStore, SqliteEvalStore

PG_ENV = "TH_TEST_EVAL_DSN"


def _pg_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The backend's name; for PostgreSQL, ``PG_ENV`` names a schema of this test's own, so runs that share
    the server (other test sessions, other tests' retention purges) never see each other's rows."""
    name: str = request.param
    if name != "postgres":
        yield name
        return
    if not _pg_up():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    with pg_schema() as dsn:
        monkeypatch.setenv(PG_ENV, dsn)
        yield name


def eval_settings(backend: str, tmp_path: Path, **extra: Any) -> Settings:
    base = mock_settings(fixed={"reply": "alpha beta gamma", "pricing": {"output_per_1m": 1_000_000}})
    data = base.model_dump()
    data["telemetry"] = {
        "evaluation": {
            "enabled": True,
            "backend": backend,
            "sqlite_path": str(tmp_path / "eval.db"),
            "postgres_dsn_env": PG_ENV,
            "flush_interval_s": 0.05,
            **extra,
        }
    }
    return Settings.model_validate(data)


def open_store(backend: str, tmp_path: Path) -> EvalStore:
    if backend == "sqlite":
        return SqliteEvalStore(str(tmp_path / "eval.db"))
    return PostgresEvalStore(os.environ[PG_ENV])


async def fetch(backend: str, tmp_path: Path, request_id: str) -> dict[str, Any] | None:
    store = open_store(backend, tmp_path)
    await store.open()
    try:
        return await store.get(request_id)
    finally:
        await store.aclose()


def test_record_and_feedback_join_on_the_request_id(backend: str, tmp_path: Path) -> None:
    rid = f"eval-{uuid.uuid4().hex}"
    secret_prompt = "my card number is 4111 1111 1111 1111"
    with TestClient(create_app(eval_settings(backend, tmp_path))) as c:
        r = c.post(
            "/v1/chat/completions",
            json={"model": "fixed", "messages": [{"role": "user", "content": secret_prompt}]},
            headers={"x-request-id": rid},
        )
        assert r.status_code == 200
        fb = c.post("/v1/feedback", json={"request_id": rid, "score": 1, "comment": "great answer"})
        assert fb.status_code == 202
        assert fb.json() == {"object": "feedback", "request_id": rid, "status": "accepted"}
        c.post("/v1/feedback", json={"request_id": rid, "score": -1})
    # Leaving the client ran the lifespan's shutdown, which flushed everything queued.
    row = asyncio.run(fetch(backend, tmp_path, rid))
    assert row is not None
    assert row["model"] == "fixed"
    assert row["deployment"] == "fixed"
    assert row["status"] == 200
    assert row["stream"] is False
    assert row["completion_tokens"] == 3
    assert row["finish_reason"] == "stop"
    assert row["cost_usd"] == pytest.approx(3.0)
    assert row["latency_ms"] > 0
    assert [(f["score"], f["comment"]) for f in row["feedback"]] == [(1.0, "great answer"), (-1.0, None)]
    assert secret_prompt not in repr(row) and "alpha" not in repr(row)


def test_records_are_written_while_serving(backend: str, tmp_path: Path) -> None:
    rid = f"eval-{uuid.uuid4().hex}"
    with TestClient(create_app(eval_settings(backend, tmp_path))) as c:
        c.post(
            "/v1/chat/completions",
            json={"model": "mock", "messages": [{"role": "user", "content": "x"}], "stream": True},
            headers={"x-request-id": rid},
        )
        deadline = time.monotonic() + 5
        row = None
        while row is None and time.monotonic() < deadline:
            time.sleep(0.05)
            row = asyncio.run(fetch(backend, tmp_path, rid))
    assert row is not None and row["stream"] is True and row["ttft_ms"] is not None


def test_sampling_zero_keeps_no_records_but_accepts_feedback(backend: str, tmp_path: Path) -> None:
    rid = f"eval-{uuid.uuid4().hex}"
    with TestClient(create_app(eval_settings(backend, tmp_path, sample_rate=0.0))) as c:
        c.post(
            "/v1/chat/completions",
            json={"model": "mock", "messages": [{"role": "user", "content": "x"}]},
            headers={"x-request-id": rid},
        )
        assert c.post("/v1/feedback", json={"request_id": rid, "score": 5}).status_code == 202
    assert asyncio.run(fetch(backend, tmp_path, rid)) is None


def test_retention_purges_old_rows(backend: str, tmp_path: Path) -> None:
    async def run() -> tuple[int, dict[str, Any] | None, dict[str, Any] | None]:
        store = open_store(backend, tmp_path)
        await store.open()
        old, new = f"old-{uuid.uuid4().hex}", f"new-{uuid.uuid4().hex}"
        now = time.time()
        try:
            await store.write(
                [_record(old, now - 90 * 86400), _record(new, now)],
                [Feedback(old, 1.0, None, None, now - 90 * 86400)],
            )
            removed = await store.purge(now - 30 * 86400)
            return removed, await store.get(old), await store.get(new)
        finally:
            await store.aclose()

    removed, old_row, new_row = asyncio.run(run())
    assert removed >= 2
    assert old_row is None
    assert new_row is not None and new_row["guardrails"] == [("pii", "redact")]


def test_feedback_validation_and_when_off(tmp_path: Path) -> None:
    with TestClient(create_app(eval_settings("sqlite", tmp_path))) as c:
        bad = c.post("/v1/feedback", json={"request_id": "has spaces", "score": 1})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "request_id"
        assert c.post("/v1/feedback", json={"request_id": "r1"}).status_code == 400
    with TestClient(create_app(mock_settings())) as c:
        off = c.post("/v1/feedback", json={"request_id": "r1", "score": 1})
        assert off.status_code == 404
        assert "telemetry.evaluation.enabled" in off.json()["error"]["message"]


def _record(rid: str, ts: float) -> EvalRecord:
    return EvalRecord(
        request_id=rid,
        ts=ts,
        endpoint="chat",
        ingress="openai",
        model="m",
        deployment="m",
        model_served="m",
        key_id=None,
        team=None,
        status=200,
        error_type=None,
        stream=False,
        latency_ms=1.0,
        ttft_ms=None,
        upstream_ms=0.5,
        overhead_ms=0.5,
        prompt_tokens=1,
        completion_tokens=1,
        cost_usd=0.0,
        finish_reason="stop",
        cache_status=None,
        guardrails=[("pii", "redact")],
        prompt_template="greeting",
        prompt_version="3",
        trace_id=None,
    )
