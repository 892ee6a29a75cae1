"""Shutting down while the evaluation writer is mid-write loses nothing: the cancelled batch is written by
the final flush (real SQLite store; its first write is held open to make the race certain)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from tollhouse.pricing import PriceBook
from tollhouse.settings import EvaluationSettings
from tollhouse.stores.evaluation import EvalRecord, Feedback, SqliteEvalStore
from tollhouse.telemetry.evaluation import EvalLogger


class FirstWriteHangs(SqliteEvalStore):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.entered = asyncio.Event()
        self.writes = 0

    async def write(self, records: Sequence[EvalRecord], feedback: Sequence[Feedback]) -> None:
        self.writes += 1
        if self.writes == 1:
            self.entered.set()
            await asyncio.Event().wait()  # until cancelled by the shutdown
        await super().write(records, feedback)


async def test_a_batch_cancelled_by_shutdown_is_written_by_the_final_flush(tmp_path: Path) -> None:
    path = str(tmp_path / "eval.db")
    store = FirstWriteHangs(path)
    logger = EvalLogger(
        EvaluationSettings(enabled=True, sqlite_path=path, flush_interval_s=0.01), store, PriceBook([])
    )
    await logger.start()
    for i in range(3):
        assert logger.feedback(Feedback(f"req-{i}", float(i), None, None, time.time()))
    await asyncio.wait_for(store.entered.wait(), 5)
    await logger.aclose()
    assert store.writes == 2
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT request_id, score FROM eval_feedback ORDER BY id").fetchall()
    assert rows == [("req-0", 0.0), ("req-1", 1.0), ("req-2", 2.0)]
