"""``outage.Outage``: one warning when a store goes away (naming it and the cause), silence while it stays
away, one info line with the count and duration when it is back; and ``tasks.every`` logs a failing
background job the same way."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tollhouse import tasks
from tollhouse.errors import StoreUnavailable
from tollhouse.outage import Outage, cause


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "test.outage"]


def test_an_outage_is_logged_once_with_its_cause_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    outage = Outage("budget store", logging.getLogger("test.outage"), "using local counters", lambda: now[0])
    caplog.set_level(logging.INFO, "test.outage")
    outage.ok()  # healthy: nothing to say
    for _ in range(181):
        outage.failed(ConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused."))
    assert outage.down and outage.failures == 181
    now[0] = 106.5
    outage.ok()
    outage.ok()
    lines = _lines(caplog)
    assert len(lines) == 2, lines
    assert lines[0][0] == logging.WARNING
    assert lines[0][1] == (
        "budget store unavailable: ConnectionError: Error 111 connecting to 127.0.0.1:6390. Connection "
        "refused.; using local counters"
    )
    assert lines[1] == (logging.INFO, "budget store available again after 6.5 s (181 failed operations)")
    assert not outage.down and outage.failures == 0
    outage.failed(TimeoutError())  # a second outage is logged again
    assert len(_lines(caplog)) == 3


def test_the_cause_of_a_store_error_is_the_underlying_one() -> None:
    assert cause(StoreUnavailable("usage ledger", "OSError: refused")) == "OSError: refused"
    assert cause(TimeoutError()) == "TimeoutError"


async def test_a_failing_background_job_is_logged_once_per_run_of_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "test.outage")
    runs = 0
    done = asyncio.Event()

    async def job() -> None:
        nonlocal runs
        runs += 1
        if runs == 25:
            done.set()
        if runs <= 20:
            raise ConnectionError("store down")

    task = tasks.every(0.001, job, "check", logging.getLogger("test.outage"))
    await asyncio.wait_for(done.wait(), 10)
    await tasks.cancel(task)
    lines = _lines(caplog)
    assert [level for level, _ in lines] == [logging.WARNING, logging.INFO], lines
    assert "background job check unavailable: ConnectionError: store down" in lines[0][1]
    assert "(20 failed operations)" in lines[1][1]
