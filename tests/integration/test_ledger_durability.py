"""The ledger never loses a record: a PostgreSQL outage during load (through a proxy the test drops and
restores) and a gateway killed with ``kill -9`` while records are buffered. Records are counted."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from tests.support.gateway_server import gateway_server
from tests.support.tcp_proxy import TcpProxy

from tollhouse.config.access import LedgerSettings
from tollhouse.ledger.usage import UsageLedger
from tollhouse.pricing import PriceBook
from tollhouse.stores.postgres import PostgresLedgerStore
from tollhouse.types import RequestContext, Usage

pytestmark = pytest.mark.slow


def _ctx(i: int) -> RequestContext:
    ctx = RequestContext(request_id=f"req-{i}", model_requested="m", deployment="m", attempts=1)
    ctx.usage = Usage(3, 4)
    return ctx


async def test_postgres_outage_during_load_loses_nothing(pg_dsn: str, tmp_path: Path) -> None:
    proxy = TcpProxy(5432)
    await proxy.up()
    dsn = pg_dsn.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    cfg = LedgerSettings(
        backend="postgres", journal_dir=str(tmp_path / "j"), flush_interval_s=0.02, retry_interval_s=0.1
    )
    ledger = UsageLedger(cfg, PostgresLedgerStore(dsn), PriceBook([]))
    await ledger.start()
    n = 0
    for phase in range(3):  # up, down, up again
        if phase == 1:
            await proxy.down()
        if phase == 2:
            await proxy.up()
        for _ in range(200):
            ledger.record(_ctx(n))
            n += 1
            if n % 10 == 0:
                await asyncio.sleep(0.005)
        if phase == 1:
            assert ledger.backlog() > 0  # spilled to the journal while the database was away
    await ledger.aclose()
    await proxy.down()
    check = PostgresLedgerStore(pg_dsn)
    await check.open()
    try:
        assert await check.count() == n == 600
    finally:
        await check.aclose()
    assert list((tmp_path / "j").iterdir()) == []  # every segment written and deleted


def test_kill_9_with_buffered_records_loses_nothing(pg_dsn: str, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    config = {
        "embedded": {"chat": False, "embeddings": False},
        "models": [{"name": "mock", "provider": "mock"}],
        "keys": {"sqlite_path": str(tmp_path / "keys.db")},
        "ledger": {
            "backend": "postgres",
            "postgres_dsn_env": "TH_TEST_LEDGER_DSN",
            "journal_dir": str(journal),
            "flush_interval_s": 3600,  # nothing reaches the database before the kill
            "batch_size": 100_000,
            "retry_interval_s": 0.2,
        },
    }
    env = {"TH_TEST_LEDGER_DSN": pg_dsn}
    body = {"model": "mock", "messages": [{"role": "user", "content": "count me"}]}
    sent = 0
    with gateway_server(config, env) as gw:
        with httpx.Client(base_url=gw.base_url, timeout=10) as c:
            for i in range(150):
                stream = i % 3 == 0
                r = c.post("/chat/completions", json={**body, "stream": stream})
                assert r.status_code == 200
                sent += 1
        os.kill(gw.proc.pid, signal.SIGKILL)
        gw.proc.wait()
    assert sent == 150 and any(journal.iterdir())

    async def count() -> int:
        store = PostgresLedgerStore(pg_dsn)
        await store.open()
        try:
            return await store.count()
        finally:
            await store.aclose()

    assert asyncio.run(count()) == 0
    with gateway_server(config, env):  # a new process adopts the dead one's journal and replays it
        deadline = time.monotonic() + 10
        while asyncio.run(count()) < sent and time.monotonic() < deadline:
            time.sleep(0.1)
        assert asyncio.run(count()) == sent
