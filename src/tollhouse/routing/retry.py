"""Which failures are worth another attempt, and how long to wait before one (exponential backoff with
full jitter, honouring the upstream's Retry-After up to a cap)."""

from __future__ import annotations

import random

from tollhouse.errors import (
    ContextWindowExceeded,
    Overloaded,
    TollhouseError,
    UpstreamConnectionError,
    UpstreamContentFiltered,
    UpstreamContextWindowExceeded,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from tollhouse.settings import ErrorClass, RetrySettings

# Failures another attempt may fix. context_window / content_filter need a different model (a fallback);
# a malformed request (400) or an auth problem of the client is returned as it is.
RETRY_SAFE: frozenset[ErrorClass] = frozenset(
    {"server_error", "rate_limit", "timeout", "connection", "overloaded"}
)
# Failures that say something about the deployment's health (circuit breaker input).
HEALTH_FAILURES: frozenset[ErrorClass] = frozenset({"server_error", "timeout", "connection"})


def classify(exc: BaseException) -> ErrorClass | None:
    """The routing class of a failure, or None when no other attempt or fallback can help."""
    if isinstance(exc, UpstreamContextWindowExceeded | ContextWindowExceeded):
        return "context_window"
    if isinstance(exc, UpstreamContentFiltered):
        return "content_filter"
    if isinstance(exc, UpstreamRateLimited):
        return "rate_limit"
    if isinstance(exc, UpstreamTimeout):
        return "timeout"
    if isinstance(exc, UpstreamConnectionError):
        return "connection"
    if isinstance(exc, Overloaded):
        return "overloaded"
    if isinstance(exc, UpstreamError) and exc.retryable:
        return "server_error"
    return None


class Backoff:
    """Delay before retrying a deployment that already failed in this request.

    Full jitter (a uniform draw in [0, min(cap, base·2ⁿ)]) spreads the retries of many clients that failed
    together, so they do not hit the upstream again in lockstep. An upstream ``Retry-After`` replaces the
    draw when it is within ``max_retry_after_s``; a longer one returns None (do not wait for it).
    """

    __slots__ = ("_base", "_cap", "_max_retry_after", "_rng")

    def __init__(self, cfg: RetrySettings, rng: random.Random) -> None:
        self._base = cfg.base_delay_s
        self._cap = cfg.max_delay_s
        self._max_retry_after = cfg.max_retry_after_s
        self._rng = rng

    def delay(self, retry: int, exc: TollhouseError | None = None) -> float | None:
        """Seconds to wait before retry number ``retry`` (0-based), or None when not worth waiting."""
        retry_after = exc.retry_after if exc is not None else None
        if retry_after is not None:
            return retry_after if retry_after <= self._max_retry_after else None
        ceiling = min(self._cap, self._base * (2**retry))
        return self._rng.uniform(0.0, ceiling)
