"""Circuit breakers, one per deployment: closed → open → half-open → closed.

Closed: requests flow; the circuit opens after ``failure_threshold`` consecutive failures, or when the
failure rate over the last ``window_s`` reaches ``failure_rate`` with at least ``min_requests`` requests.
Open: routing skips the deployment for ``cooldown_s``. Half-open: at most ``half_open_probes`` requests go
through at a time; a probe's success closes the circuit, its failure opens it again. Everything here is
synchronous and allocation-free per request: the hot path never awaits for a breaker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from tollhouse.settings import BreakerSettings

State = Literal["closed", "open", "half_open"]
DENY, ALLOW, PROBE = 0, 1, 2  # results of CircuitBreaker.allow
_BUCKETS = 10

Listener = Callable[["CircuitBreaker", State], None]


class CircuitBreaker:
    """State of one deployment's circuit. ``clock`` is monotonic seconds (injected by tests)."""

    __slots__ = (
        "_bucket_s",
        "_fail",
        "_ids",
        "_listener",
        "_ok",
        "cfg",
        "consecutive",
        "name",
        "open_until",
        "probes",
        "state",
    )

    def __init__(self, name: str, cfg: BreakerSettings, listener: Listener | None = None) -> None:
        self.name = name
        self.cfg = cfg
        self.state: State = "closed"
        self.consecutive = 0
        self.open_until = 0.0
        self.probes = 0
        self._listener = listener
        self._bucket_s = cfg.window_s / _BUCKETS
        self._ok = [0] * _BUCKETS
        self._fail = [0] * _BUCKETS
        self._ids = [-1] * _BUCKETS

    # ---- decisions ----------------------------------------------------------------------------------

    def available(self, now: float) -> bool:
        """Would ``allow`` let a request through now? (No side effects.)"""
        if self.state == "closed":
            return True
        if self.state == "open" and now < self.open_until:
            return False
        return self.probes < self.cfg.half_open_probes

    def allow(self, now: float) -> int:
        """DENY, ALLOW or PROBE (a half-open trial whose outcome decides the state; must be settled)."""
        if self.state == "closed":
            return ALLOW
        if self.state == "open":
            if now < self.open_until:
                return DENY
            self._set("half_open", notify=False)
        if self.probes >= self.cfg.half_open_probes:
            return DENY
        self.probes += 1
        return PROBE

    # ---- outcomes -----------------------------------------------------------------------------------

    def success(self, permit: int, now: float) -> None:
        if permit == PROBE:
            self.probes = max(0, self.probes - 1)
            if self.state == "half_open":
                self._close()
            return
        if self.state == "closed":
            self.consecutive = 0
            self._count(now, failed=False)

    def failure(self, permit: int, now: float) -> None:
        if permit == PROBE:
            self.probes = max(0, self.probes - 1)
            if self.state != "closed":
                self.trip(now)
            return
        if self.state != "closed":
            return
        self.consecutive += 1
        self._count(now, failed=True)
        if self.consecutive >= self.cfg.failure_threshold or self._rate_exceeded(now):
            self.trip(now)

    def release(self, permit: int) -> None:
        """The request ended without a verdict on the deployment (cancelled, or a client error)."""
        if permit == PROBE:
            self.probes = max(0, self.probes - 1)

    # ---- transitions ----------------------------------------------------------------------------------

    def trip(self, now: float, cooldown_s: float | None = None, *, notify: bool = True) -> None:
        """Open the circuit for ``cooldown_s`` (default: the configured cooldown)."""
        self.open_until = now + (self.cfg.cooldown_s if cooldown_s is None else cooldown_s)
        self.probes = 0
        self._reset_counts()
        self._set("open", notify=notify)

    def force_close(self) -> None:
        """Close because another process's probe succeeded (no notification back)."""
        self._close(notify=False)

    def _close(self, *, notify: bool = True) -> None:
        self.probes = 0
        self._reset_counts()
        self._set("closed", notify=notify)

    def _set(self, state: State, *, notify: bool) -> None:
        changed = state != self.state
        self.state = state
        if changed and notify and self._listener is not None:
            self._listener(self, state)

    # ---- failure-rate window ---------------------------------------------------------------------------

    def _count(self, now: float, *, failed: bool) -> None:
        k = int(now / self._bucket_s)
        i = k % _BUCKETS
        if self._ids[i] != k:
            self._ids[i] = k
            self._ok[i] = 0
            self._fail[i] = 0
        if failed:
            self._fail[i] += 1
        else:
            self._ok[i] += 1

    def _rate_exceeded(self, now: float) -> bool:
        oldest = int(now / self._bucket_s) - _BUCKETS
        fail = total = 0
        for i in range(_BUCKETS):
            if self._ids[i] > oldest:
                fail += self._fail[i]
                total += self._fail[i] + self._ok[i]
        return total >= self.cfg.min_requests and fail >= self.cfg.failure_rate * total

    def _reset_counts(self) -> None:
        self.consecutive = 0
        self._ids = [-1] * _BUCKETS

    def snapshot(self, now: float) -> dict[str, Any]:
        """For ``/health/ready``: the state as routing sees it now."""
        state: State = self.state
        if state == "open" and now >= self.open_until:
            state = "half_open"
        out: dict[str, Any] = {"state": state, "consecutive_failures": self.consecutive}
        if state == "open":
            out["retry_in_s"] = round(self.open_until - now, 3)
        return out
