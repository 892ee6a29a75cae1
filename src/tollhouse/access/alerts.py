"""Budget alerts at 50 / 80 / 100 % (``budgets.alerts``): a log line and a signed webhook POST.

The budget limiter notes every counter it reserves on; a background task reads those counters every
``check_interval_s`` (never on the request path) and raises one alert per counter and threshold crossed.
Delivery is at-least-once: retried with exponential backoff until the receiver answers 2xx; a marker in
the budget store (shared through Redis) stops other processes from sending an alert already delivered.
Every alert carries a stable id (``x-tollhouse-event-id``), so a receiver drops the rare duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import time
from typing import Any

import orjson

from tollhouse.config.access import BudgetAlerts
from tollhouse.stores.base import BudgetStore, Counter
from tollhouse.tasks import cancel, every

log = logging.getLogger("tollhouse.budget.alerts")


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class BudgetAlerter:
    def __init__(self, cfg: BudgetAlerts, store: BudgetStore) -> None:
        self.cfg = cfg
        self.store = store
        self._watched: dict[str, tuple[Counter, str]] = {}  # counter key → (counter, description)
        self._done: set[str] = set()  # alert ids delivered (or being delivered) by this process
        self._secret = os.environ.get(cfg.secret_env, "").encode() if cfg.secret_env else b""
        self._task: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._session: Any = None
        self.sent = 0

    def watch(self, counters: list[Counter], names: list[str]) -> None:
        for c, name in zip(counters, names, strict=True):
            if c.key not in self._watched:
                self._watched[c.key] = (c, name)

    async def start(self) -> None:
        self._task = every(self.cfg.check_interval_s, self.check, "budget-alert-check", log)

    async def check(self) -> None:
        for key, (counter, name) in list(self._watched.items()):
            spent = await self.store.spent(key)
            for share in sorted(self.cfg.thresholds):
                if spent < share * counter.limit:
                    break
                alert_id = f"{key}:{round(share * 100)}"
                if alert_id in self._done or await self.store.spent("alert:" + alert_id) > 0:
                    self._done.add(alert_id)
                    continue
                self._done.add(alert_id)
                event = {
                    "id": alert_id,
                    "type": "budget.threshold",
                    "budget": name,
                    "threshold": share,
                    "limit_usd": counter.limit / 1e6,
                    "spent_usd": spent / 1e6,
                    "ts": time.time(),
                }
                log.warning("budget threshold crossed", extra=event)
                task = asyncio.create_task(
                    self._deliver(event, Counter("alert:" + alert_id, 0, 0, counter.ttl_s))
                )
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, event: dict[str, Any], marker: Counter) -> None:
        if not self.cfg.webhook_url:
            await self.store.adjust([marker], 1)
            return
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        body = orjson.dumps(event)
        delay = self.cfg.retry_base_s
        for attempt in range(1, self.cfg.max_attempts + 1):
            headers = {
                "content-type": "application/json",
                "x-tollhouse-event-id": event["id"],
                "x-tollhouse-signature": sign(self._secret, int(time.time()), body),
            }
            try:
                async with self._session.post(self.cfg.webhook_url, data=body, headers=headers) as r:
                    if 200 <= r.status < 300:
                        self.sent += 1
                        with contextlib.suppress(Exception):
                            await self.store.adjust([marker], 1)
                        return
                    reason = f"HTTP {r.status}"
            except Exception as exc:
                reason = type(exc).__name__
            log.warning(
                "budget alert delivery failed",
                extra={"id": event["id"], "attempt": attempt, "reason": reason},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)
        self._done.discard(event["id"])  # let the next check (or another process) try again

    async def aclose(self) -> None:
        await cancel(self._task)
        for t in list(self._deliveries):
            t.cancel()
        if self._session is not None:
            await self._session.close()
