"""``EvalStore`` contract, over SQLite and the real PostgreSQL (a schema of its own per test): records round
trip field by field, feedback joins its request (oldest first, other requests' never), the latest record of a
repeated request id wins, purging is by time over both tables, and everything survives a reopen.

Both backends are opened through ``stores.build.eval_store``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from tollhouse.settings import EvaluationSettings
from tollhouse.stores.build import eval_store
from tollhouse.stores.evaluation import EvalRecord, EvalStore, Feedback, PostgresEvalStore, SqliteEvalStore

Opener = Callable[[], Awaitable[EvalStore]]
DSN_ENV = "TH_TEST_EVAL_STORE_DSN"


@pytest.fixture(params=["sqlite", "postgres"])
async def open_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Opener]:
    """Opens one more store on the same database."""
    if request.param == "postgres":
        monkeypatch.setenv(DSN_ENV, request.getfixturevalue("pg_dsn"))
    cfg = EvaluationSettings(
        backend=request.param, sqlite_path=str(tmp_path / "eval.db"), postgres_dsn_env=DSN_ENV
    )
    opened: list[EvalStore] = []

    async def open_one() -> EvalStore:
        store = eval_store(cfg)
        assert isinstance(store, SqliteEvalStore if request.param == "sqlite" else PostgresEvalStore)
        await store.open()
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.aclose()


@pytest.fixture
async def store(open_store: Opener) -> EvalStore:
    return await open_store()


def record(rid: str, ts: float | None = None, **kw: object) -> EvalRecord:
    base = EvalRecord(
        request_id=rid,
        ts=time.time() if ts is None else ts,
        endpoint="chat",
        ingress="openai",
        model="m",
        deployment="dep-1",
        model_served="m-2025",
        key_id="key_1",
        team="research",
        status=200,
        error_type=None,
        stream=True,
        latency_ms=12.5,
        ttft_ms=3.25,
        upstream_ms=10.0,
        overhead_ms=2.5,
        prompt_tokens=11,
        completion_tokens=7,
        cost_usd=0.000123,
        finish_reason="stop",
        cache_status="miss",
        guardrails=[("pii", "redact"), ("injection", "shadow")],
        prompt_template="greeting",
        prompt_version="3",
        trace_id="0af7651916cd43dd8448eb211c80319c",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def fields_of(r: EvalRecord) -> dict[str, object]:
    return asdict(r) | {"guardrails": None if r.guardrails is None else [tuple(g) for g in r.guardrails]}


async def test_a_record_round_trips_with_its_feedback(store: EvalStore) -> None:
    r = record("req-1")
    await store.write([r], [Feedback("req-1", 1.0, "great", "key_1", r.ts + 1)])
    await store.write(
        [], [Feedback("req-1", -0.5, None, None, r.ts + 2), Feedback("req-2", 5.0, "x", None, r.ts)]
    )
    got = await store.get("req-1")
    assert got is not None
    feedback = got.pop("feedback")
    assert got == fields_of(r)
    assert got["stream"] is True  # a boolean, not 1
    assert [(f["score"], f["comment"], f["key_id"]) for f in feedback] == [
        (1.0, "great", "key_1"),
        (-0.5, None, None),
    ]


async def test_nullable_fields_stay_null(store: EvalStore) -> None:
    r = record(
        "req-null",
        model=None,
        deployment=None,
        key_id=None,
        ttft_ms=None,
        prompt_tokens=None,
        completion_tokens=None,
        guardrails=None,
        stream=False,
        status=502,
        error_type="upstream_unavailable",
        finish_reason=None,
        trace_id=None,
    )
    await store.write([r], [])
    got = await store.get("req-null")
    assert got is not None and got.pop("feedback") == []
    assert got == fields_of(r) and got["stream"] is False


async def test_unknown_requests_have_no_record_even_with_feedback(store: EvalStore) -> None:
    await store.write([], [Feedback("never-recorded", 1.0, None, None, time.time())])
    assert await store.get("never-recorded") is None
    assert await store.get("nothing-at-all") is None


async def test_the_latest_record_of_a_repeated_request_id_wins(store: EvalStore) -> None:
    now = time.time()
    await store.write([record("dup", now - 10, status=500), record("dup", now, status=200)], [])
    await store.write([record("dup", now - 5, status=429)], [])  # written later, but older
    got = await store.get("dup")
    assert got is not None and got["status"] == 200


async def test_purge_removes_old_records_and_feedback(store: EvalStore) -> None:
    now = time.time()
    old, new = now - 90 * 86400, now
    await store.write(
        [record("old", old), record("new", new)],
        [
            Feedback("old", 1.0, None, None, old),
            Feedback("new", 1.0, None, None, old),
            Feedback("new", 2.0, None, None, new),
        ],
    )
    assert await store.purge(now - 30 * 86400) == 3
    assert await store.get("old") is None
    got = await store.get("new")
    assert got is not None and [f["score"] for f in got["feedback"]] == [2.0]
    assert await store.purge(now - 30 * 86400) == 0


async def test_records_survive_a_reopen(open_store: Opener) -> None:
    first = await open_store()
    await first.write([record("kept")], [Feedback("kept", 3.0, None, None, time.time())])
    await first.aclose()
    second = await open_store()
    got = await second.get("kept")
    assert got is not None and got["feedback"][0]["score"] == 3.0


async def test_one_batch_is_one_transaction(store: EvalStore) -> None:
    await store.write([record("good")], [Feedback("good", 1.0, None, None, time.time())])
    unbindable = record("bad", team={"not": "a string"})  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017, PT011  (each backend raises its own error)
        await store.write(
            [record("first-of-batch"), unbindable], [Feedback("first-of-batch", 1.0, None, None, 0)]
        )
    assert await store.get("first-of-batch") is None  # the failed batch left nothing behind
    got = await store.get("good")
    assert got is not None and len(got["feedback"]) == 1
    await store.write([record("after")], [])  # the store still works
    assert await store.get("after") is not None
