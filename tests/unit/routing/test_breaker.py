"""Circuit breaker transitions: closed → open (consecutive failures or failure rate) → half-open with a
limited number of probes → closed on a probe's success, open again on its failure."""

from __future__ import annotations

from tollhouse.routing.breaker import ALLOW, DENY, PROBE, CircuitBreaker
from tollhouse.settings import BreakerSettings


def breaker(**kw: object) -> tuple[CircuitBreaker, list[str]]:
    seen: list[str] = []
    cfg = BreakerSettings.model_validate({"failure_threshold": 3, "cooldown_s": 10, **kw})
    return CircuitBreaker("d", cfg, lambda b, state: seen.append(state)), seen


def test_consecutive_failures_open_and_a_success_resets_the_count() -> None:
    b, seen = breaker()
    for _ in range(2):
        b.failure(b.allow(0), 0)
    b.success(b.allow(0), 0)
    assert b.consecutive == 0 and b.state == "closed"
    for _ in range(3):
        b.failure(b.allow(1), 1)
    assert b.state == "open" and seen == ["open"]
    assert b.allow(5) == DENY and not b.available(5)


def test_half_open_admits_only_the_probe_limit_then_closes_on_success() -> None:
    b, seen = breaker(half_open_probes=2)
    for _ in range(3):
        b.failure(b.allow(0), 0)
    assert b.allow(9.9) == DENY
    assert b.available(10)
    first, second, third = b.allow(10), b.allow(10), b.allow(10)
    assert (first, second, third) == (PROBE, PROBE, DENY)
    assert b.state == "half_open"
    b.success(first, 11)
    assert b.state == "closed" and seen == ["open", "closed"]
    b.success(second, 11)  # a late probe's success changes nothing
    assert b.allow(11) == ALLOW


def test_probe_failure_reopens_for_another_cooldown() -> None:
    b, seen = breaker()
    for _ in range(3):
        b.failure(b.allow(0), 0)
    probe = b.allow(10)
    b.failure(probe, 10)
    assert b.state == "open" and b.allow(19) == DENY and b.allow(20) == PROBE
    assert seen == ["open", "open"] or seen == ["open"]


def test_released_probe_frees_its_slot() -> None:
    b, _ = breaker()
    for _ in range(3):
        b.failure(b.allow(0), 0)
    probe = b.allow(10)
    assert b.allow(10) == DENY
    b.release(probe)
    assert b.allow(10) == PROBE


def test_failure_rate_in_window_opens_without_consecutive_failures() -> None:
    b, _ = breaker(failure_threshold=100, failure_rate=0.5, min_requests=10, window_s=10)
    t = 0.0
    for i in range(9):  # alternate: never two failures in a row, 4-5 failures out of 9
        (b.failure if i % 2 else b.success)(b.allow(t), t)
        t += 0.1
    assert b.state == "closed"  # below min_requests
    b.failure(b.allow(t), t)
    assert b.state == "open"


def test_old_outcomes_leave_the_window() -> None:
    b, _ = breaker(failure_threshold=100, failure_rate=0.75, min_requests=4, window_s=10)
    for _ in range(3):
        b.success(b.allow(0), 0)
        b.failure(b.allow(0), 0)
    assert b.state == "closed"
    # 30 s later only the new outcomes count: 3 failures in 4 requests (with the old ones: 6 in 10).
    b.success(b.allow(30), 30)
    for _ in range(3):
        b.failure(b.allow(30), 30)
    assert b.state == "open"


def test_snapshot_reports_half_open_after_cooldown() -> None:
    b, _ = breaker()
    for _ in range(3):
        b.failure(b.allow(0), 0)
    assert b.snapshot(1)["state"] == "open" and b.snapshot(1)["retry_in_s"] == 9
    assert b.snapshot(10)["state"] == "half_open"
