"""Usage ledgers (the ``pipeline.ledger.Ledger`` seam); ``record`` never blocks. ``CostLedger`` only prices
the request (the ``x-tollhouse-cost-usd`` header); ``UsageLedger`` journals every record locally
(``journal``) and writes batches to a ``LedgerStore`` — a database outage or a killed process loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from tollhouse.config.access import LedgerSettings
from tollhouse.ledger.journal import Journal, Segment
from tollhouse.outage import Outage
from tollhouse.pricing import PriceBook
from tollhouse.stores.base import LedgerRecord, LedgerStore
from tollhouse.tasks import cancel
from tollhouse.types import RequestContext, hex_id

log = logging.getLogger("tollhouse.ledger")
PURGE_EVERY_S = 3600.0


def request_cost(ctx: RequestContext, prices: PriceBook) -> float | None:
    """USD of the request at its deployment's prices. No usage: 0 when no upstream call was made (blocked,
    cached, refused), else unknown (None) — never a silent 0 for a call that may have been billed."""
    if ctx.usage is None:
        return 0.0 if ctx.attempts == 0 else None
    return prices.cost(ctx.deployment, ctx.usage)


class CostLedger:
    """Ledger off: the request is still priced, for the cost header."""

    def __init__(self, prices: PriceBook) -> None:
        self.prices = prices

    def record(self, ctx: RequestContext) -> None:
        ctx.cost_usd = request_cost(ctx, self.prices)

    async def aclose(self) -> None:
        return None


def build_ledger_record(ctx: RequestContext, cost: float | None) -> LedgerRecord:
    usage = ctx.usage
    p = ctx.principal
    got = ctx.retrieval
    return LedgerRecord(
        id=hex_id(),
        request_id=ctx.request_id,
        ts=time.time(),
        endpoint=ctx.endpoint,
        key_id=p.key_id,
        user=p.user,
        team=p.team,
        model=ctx.model_requested,
        model_served=ctx.model_served,
        deployment=ctx.deployment,
        prompt_tokens=None if usage is None else usage.prompt_tokens,
        completion_tokens=None if usage is None else usage.completion_tokens,
        cached_tokens=None if usage is None else usage.cached_tokens,
        cost_usd=cost,
        latency_ms=round(ctx.elapsed() * 1000, 3),
        ttft_ms=None if ctx.ttft_seconds is None else round(ctx.ttft_seconds * 1000, 3),
        status=ctx.status,
        error_class=ctx.error_class,
        stream=ctx.stream,
        cache_hit=ctx.cache_status in ("hit", "semantic-hit"),
        guardrails=json.dumps(ctx.guardrail_events) if ctx.guardrail_events else None,
        prompt_version=ctx.prompt_version,
        cache_status=ctx.cache_status,
        saved_usd=ctx.cache_saved_usd,
        ingress=ctx.ingress,
        retrieval_chunks=None if got is None else len(got.texts),
        retrieval_tokens=None if got is None else got.tokens_added,
        retrieval_ms=None if got is None else round(ctx.stage_seconds.get("retrieval", 0.0) * 1000, 3),
    )


class UsageLedger:
    """``start`` in the lifespan (opens the store, replays journal segments left by dead processes),
    ``aclose`` on shutdown (flushes; what the database refuses stays journaled for the next start)."""

    def __init__(self, cfg: LedgerSettings, store: LedgerStore, prices: PriceBook) -> None:
        self.cfg = cfg
        self.store = store
        self.prices = prices
        self.journal = Journal(cfg.journal_dir)
        self._pending: list[Segment] = []  # sealed segments not yet in the database
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.unknown_costs = 0  # successful requests whose usage (so cost) was unknown
        self.journal_errors = 0
        # One warning per outage (and one line when it ends), shared with the reports that read the store.
        self.outage = Outage(
            "usage ledger database", log, "records stay in the local journal until it is back"
        )
        self._journal_outage = Outage("ledger journal", log, "usage records are not kept")

    # ---- request path: append only --------------------------------------------------------------------

    def record(self, ctx: RequestContext) -> None:
        cost = request_cost(ctx, self.prices)
        ctx.cost_usd = cost
        if cost is None and ctx.status < 400:
            self.unknown_costs += 1
            log.warning("usage unknown: cost recorded as null", extra={"deployment": ctx.deployment})
        try:
            n = self.journal.append(build_ledger_record(ctx, cost))
        except Exception as exc:  # a record must never fail a request; the log line keeps the evidence
            self.journal_errors += 1
            self._journal_outage.failed(exc, request_id=ctx.request_id)
            return
        self._journal_outage.ok()
        if n >= self.cfg.batch_size:
            self._wake.set()

    # ---- background -------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.journal.open()
        try:
            await self.store.open()
        except Exception as exc:  # start anyway: records are journaled and the store reconnects by itself
            self.outage.failed(exc, phase="start-up")
        self._adopt_orphans()
        self._task = asyncio.create_task(self._run(), name="tollhouse-ledger-writer")

    def _adopt_orphans(self) -> None:
        owned = {s.path for s in self._pending}
        found = self.journal.orphans(owned)
        if found:
            log.info("replaying ledger journal", extra={"segments": [s.path.name for s in found]})
            self._pending.extend(found)
            self._wake.set()  # replay now, not at the next flush interval

    async def flush(self) -> bool:
        """Seal the active segment and write every pending one; False when the database refused."""
        seg = self.journal.rotate()
        if seg is not None:
            self._pending.append(seg)
        retried = False
        while self._pending:
            seg = self._pending[0]
            try:
                records = await asyncio.to_thread(seg.load) if seg.records is None else seg.records
                if records:
                    await self.store.write(records)
            except Exception as exc:
                self.outage.failed(exc, segments=len(self._pending))
                # A pool may hold connections that died with the outage: reconnect, retry once at once.
                if retried or not await self._reopen():
                    return False
                retried = True
                continue
            self.outage.ok()
            self._pending.pop(0)
            seg.delete()
        return True

    async def _reopen(self) -> bool:
        with contextlib.suppress(Exception):
            await self.store.aclose()
        try:
            await self.store.open()
        except Exception:
            return False
        return True

    async def purge(self) -> None:
        """Drop records older than ``retention_days`` (when set)."""
        if self.cfg.retention_days is None:
            return
        try:
            removed = await self.store.purge(time.time() - self.cfg.retention_days * 86400)
        except Exception as exc:
            self.outage.failed(exc, phase="purge")
            return
        self.outage.ok()
        if removed:
            log.info("ledger records purged", extra={"rows": removed})

    async def _run(self) -> None:
        next_orphans = time.monotonic() + self.cfg.retry_interval_s
        next_purge = time.monotonic() + 60.0
        healthy = True
        while True:
            wait = self.cfg.flush_interval_s if healthy else self.cfg.retry_interval_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
            if time.monotonic() >= next_orphans:
                next_orphans = time.monotonic() + self.cfg.retry_interval_s
                self._adopt_orphans()
            healthy = await self.flush()
            if healthy and time.monotonic() >= next_purge:
                next_purge = time.monotonic() + PURGE_EVERY_S
                await self.purge()

    def backlog(self) -> int:
        """Segments journaled but not yet in the database."""
        return len(self._pending)

    async def aclose(self) -> None:
        await cancel(self._task)
        self._task = None
        for _ in range(3):  # shutdown: a few quick tries before leaving the rest to the next start
            if await self.flush():
                break
            await asyncio.sleep(0.2)
        for seg in self._pending:
            seg.release()
        self._pending = []
        self.journal.close()
        with contextlib.suppress(Exception):
            await self.store.aclose()
