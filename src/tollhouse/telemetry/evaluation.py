"""Evaluation logging: one record per (sampled) request and user feedback, written off the request path.

``record`` and ``feedback`` only append to an in-memory batch (never I/O, never raise); a background task
writes batches every ``flush_interval_s`` (sooner when 500 are waiting), purges rows older than
``retention_days`` hourly, and ``aclose`` flushes what is left. A full queue drops new records and counts
them. Records hold counts, timings, outcomes and ids — never prompt or completion text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable

from tollhouse.outage import Outage
from tollhouse.pricing import PriceBook
from tollhouse.settings import EvaluationSettings
from tollhouse.stores.evaluation import EvalRecord, EvalStore, Feedback
from tollhouse.tasks import cancel
from tollhouse.types import RequestContext

log = logging.getLogger("tollhouse.evaluation")

BATCH = 500
PURGE_EVERY_S = 3600.0
EVALUATED_ENDPOINTS = frozenset({"chat", "completions", "embeddings"})


def build_record(ctx: RequestContext, status: int, prices: PriceBook, trace_id: str | None) -> EvalRecord:
    total = ctx.elapsed()
    usage = ctx.usage
    if ctx.error_type is not None and ctx.status != 200:
        status = ctx.status
    return EvalRecord(
        request_id=ctx.request_id,
        ts=time.time(),
        endpoint=ctx.endpoint,
        ingress=ctx.ingress,
        model=ctx.model_requested,
        deployment=ctx.deployment,
        model_served=ctx.model_served,
        key_id=ctx.principal.key_id,
        team=ctx.principal.team,
        status=status,
        error_type=ctx.error_class or ctx.error_type,
        stream=ctx.stream,
        latency_ms=round(total * 1000, 3),
        ttft_ms=None if ctx.ttft_seconds is None else round(ctx.ttft_seconds * 1000, 3),
        upstream_ms=round(ctx.upstream_seconds * 1000, 3),
        overhead_ms=round(max(0.0, total - ctx.upstream_seconds) * 1000, 3),
        prompt_tokens=None if usage is None else usage.prompt_tokens,
        completion_tokens=None if usage is None else usage.completion_tokens,
        cost_usd=prices.cost(ctx.deployment, usage),
        finish_reason=ctx.finish_reason,
        cache_status=ctx.cache_status,
        guardrails=list(ctx.guardrail_events) if ctx.guardrail_events else None,
        prompt_template=ctx.prompt_template,
        prompt_version=ctx.prompt_version,
        trace_id=trace_id,
    )


class EvalLogger:
    """Queues records and feedback for ``store``; ``start`` in the lifespan, ``aclose`` on shutdown."""

    def __init__(
        self,
        settings: EvaluationSettings,
        store: EvalStore,
        prices: PriceBook,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.prices = prices
        self._records: list[EvalRecord] = []
        self._feedback: list[Feedback] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._on_drop = on_drop or (lambda n: None)
        self._rate = settings.sample_rate
        self.outage = Outage("evaluation store", log, "evaluation records and feedback are dropped (counted)")

    # ---- request path: append only ------------------------------------------------------------------

    def record(self, ctx: RequestContext, status: int, trace_id: str | None = None) -> None:
        if ctx.endpoint not in EVALUATED_ENDPOINTS or (self._rate < 1.0 and random.random() >= self._rate):
            return
        if len(self._records) >= self.settings.max_queue:
            self._on_drop(1)
            return
        try:
            self._records.append(build_record(ctx, status, self.prices, trace_id))
        except Exception:  # a record must never fail a request
            log.exception("evaluation record failed")
            return
        if len(self._records) >= BATCH:
            self._wake.set()

    def feedback(self, fb: Feedback) -> bool:
        """Queue feedback; False when the queue is full."""
        if len(self._feedback) >= self.settings.max_queue:
            self._on_drop(1)
            return False
        self._feedback.append(fb)
        return True

    # ---- background ---------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self.store.open()
        except Exception as exc:  # start anyway: records queue up and the store reconnects when it is back
            self.outage.failed(exc, phase="start-up")
        else:
            await self._purge()
        self._task = asyncio.create_task(self._run(), name="tollhouse-evaluation-writer")

    async def flush(self) -> None:
        records, self._records = self._records, []
        feedback, self._feedback = self._feedback, []
        if not records and not feedback:
            return
        try:
            await self.store.write(records, feedback)
        except asyncio.CancelledError:
            # Shut down mid-write (``aclose`` cancels the writer): the batch goes back to the front of the
            # queue, so the final flush writes it instead of losing it.
            self._records[:0] = records
            self._feedback[:0] = feedback
            raise
        except Exception as exc:
            self.outage.failed(exc, records=len(records), feedback=len(feedback))
            self._on_drop(len(records) + len(feedback))
            return
        self.outage.ok()

    async def _purge(self) -> None:
        try:
            removed = await self.store.purge(time.time() - self.settings.retention_days * 86400)
        except Exception as exc:
            self.outage.failed(exc, phase="purge")
            return
        self.outage.ok()
        if removed:
            log.info("evaluation records purged", extra={"rows": removed})

    async def _run(self) -> None:
        next_purge = time.monotonic() + PURGE_EVERY_S
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.flush_interval_s)
            self._wake.clear()
            await self.flush()
            if time.monotonic() >= next_purge:
                next_purge = time.monotonic() + PURGE_EVERY_S
                await self._purge()

    async def aclose(self) -> None:
        await cancel(self._task)
        self._task = None
        await self.flush()
        await self.store.aclose()
