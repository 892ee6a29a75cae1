"""Budget alerts: one signed webhook POST per budget and threshold, retried until accepted, never sent
again by another process once delivered (shared marker in the budget store)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Any

import orjson
import pytest
from aiohttp import web

from tollhouse.access.alerts import BudgetAlerter
from tollhouse.config.access import BudgetAlerts
from tollhouse.stores.base import Counter
from tollhouse.stores.memory import MemoryBudgetStore

SECRET = "whsec-test"


async def test_thresholds_signed_retried_and_deduplicated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TH_ALERT_SECRET", SECRET)
    received: list[tuple[dict[str, Any], dict[str, str]]] = []
    calls = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.Response(status=500)  # the first delivery fails: must be retried
        body = await request.read()
        t, _, mac = request.headers["x-tollhouse-signature"].partition(",v1=")
        ts = t.removeprefix("t=")
        expected = hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(mac, expected)
        received.append((orjson.loads(body), dict(request.headers)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    cfg = BudgetAlerts(
        webhook_url=f"http://127.0.0.1:{port}/hook", secret_env="TH_ALERT_SECRET", retry_base_s=0.05
    )
    store = MemoryBudgetStore()
    a, b = BudgetAlerter(cfg, store), BudgetAlerter(cfg, store)  # two processes sharing the store
    counter = Counter("b:team:eng:d:2026-01-01", 1_000_000, 0, 60)
    for alerter in (a, b):
        alerter.watch([counter], ["daily budget of team eng"])
    try:
        await store.adjust([counter], 600_000)  # 60 %: the 50 % alert
        await a.check()
        await asyncio.sleep(0.3)
        await store.adjust([counter], 450_000)  # 105 %: 80 % and 100 %
        await a.check()
        await asyncio.sleep(0.3)
        await b.check()  # already delivered by a: nothing more
        await a.check()
        await asyncio.sleep(0.2)
    finally:
        await a.aclose()
        await b.aclose()
        await runner.cleanup()
    ids = [e["id"] for e, _ in received]
    assert sorted(ids) == sorted(f"{counter.key}:{p}" for p in (50, 80, 100))
    assert len(ids) == 3 and calls == 4
    assert all(h["x-tollhouse-event-id"] == e["id"] for e, h in received)
    fifty = next(e for e, _ in received if e["threshold"] == 0.5)
    assert fifty["budget"] == "daily budget of team eng" and fifty["limit_usd"] == 1.0
    assert fifty["spent_usd"] == pytest.approx(0.6)
