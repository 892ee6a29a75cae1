"""One log line per outage, not one per request: ``Outage`` tracks one store as one caller sees it.

The first failure logs a warning that names the store, the cause and what the gateway does meanwhile;
later failures are only counted; the first success afterwards logs one info line with how many operations
failed and for how long. ``ok()`` on the request path is one attribute test while the store is healthy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any


def cause(exc: BaseException) -> str:
    """A one-line description of an error for the log: its class and (the start of) its message."""
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    name = type(exc).__name__
    detail = getattr(exc, "cause", None)  # a StoreUnavailable carries the underlying error's cause
    if isinstance(detail, str) and detail:
        return detail
    return f"{name}: {text}" if text else name


class Outage:
    """``store``: what is down, as the log should name it (e.g. ``"budget store (Redis)"``); ``effect``: what
    the gateway does while it is down (e.g. ``"admitting against this process's counters"``)."""

    __slots__ = ("_clock", "_log", "effect", "failures", "since", "store")

    def __init__(
        self,
        store: str,
        log: logging.Logger,
        effect: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.effect = effect
        self._log = log
        self._clock = clock
        self.since: float | None = None  # when the current outage began; None while healthy
        self.failures = 0  # failed operations in the current outage

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException, **extra: Any) -> bool:
        """Count a failure; log it when it starts an outage (returns True then)."""
        self.failures += 1
        if self.since is not None:
            return False
        self.since = self._clock()
        why = cause(exc)
        msg = f"{self.store} unavailable: {why}" + (f"; {self.effect}" if self.effect else "")
        self._log.warning(
            msg, extra={"store": self.store, "error": type(exc).__name__, "cause": why, **extra}
        )
        return True

    def ok(self) -> None:
        """A successful operation: ends the outage (one info line) if there was one."""
        if self.since is None:
            return
        seconds = round(self._clock() - self.since, 3)
        failures, self.since, self.failures = self.failures, None, 0
        self._log.info(
            f"{self.store} available again after {seconds} s ({failures} failed operations)",
            extra={"store": self.store, "failures": failures, "outage_s": seconds},
        )
