"""Error classes and backoff: what is retried, what falls back, what is returned; full jitter spreads
retries; Retry-After is honoured up to its cap."""

from __future__ import annotations

import random
import statistics

import pytest

from tollhouse.errors import (
    ContextWindowExceeded,
    InvalidRequest,
    Overloaded,
    TollhouseError,
    UpstreamBadRequest,
    UpstreamConnectionError,
    UpstreamContentFiltered,
    UpstreamContextWindowExceeded,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tollhouse.routing.retry import Backoff, classify
from tollhouse.settings import RetrySettings


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (UpstreamUnavailable("x", status=503), "server_error"),
        (UpstreamError("x"), "server_error"),
        (UpstreamRateLimited("x", retry_after=1), "rate_limit"),
        (UpstreamTimeout("x"), "timeout"),
        (UpstreamConnectionError("x"), "connection"),
        (Overloaded("x"), "overloaded"),
        (UpstreamContextWindowExceeded("x"), "context_window"),
        (ContextWindowExceeded("x"), "context_window"),
        (UpstreamContentFiltered("x"), "content_filter"),
        (UpstreamBadRequest("x"), None),
        (InvalidRequest("x"), None),
    ],
)
def test_classify(exc: TollhouseError, cls: str | None) -> None:
    assert classify(exc) == cls


def test_full_jitter_spreads_retries_over_the_whole_interval() -> None:
    backoff = Backoff(RetrySettings(base_delay_s=0.1, max_delay_s=10), random.Random(1))
    draws = [backoff.delay(3) for _ in range(2000)]  # ceiling 0.8 s
    values = [d for d in draws if d is not None]
    assert len(values) == 2000
    assert min(values) >= 0 and max(values) <= 0.8
    assert min(values) < 0.05 and max(values) > 0.75  # the whole interval is used
    assert 0.35 < statistics.mean(values) < 0.45  # uniform: mean ≈ half the ceiling
    assert len({round(v, 6) for v in values}) > 1900  # no synchronised retries
    # Different clients (different seeds) do not retry in lockstep either.
    other = Backoff(RetrySettings(base_delay_s=0.1, max_delay_s=10), random.Random(2))
    assert [backoff.delay(0) for _ in range(5)] != [other.delay(0) for _ in range(5)]


def test_backoff_is_capped() -> None:
    backoff = Backoff(RetrySettings(base_delay_s=1, max_delay_s=2), random.Random(1))
    assert all((d := backoff.delay(10)) is not None and d <= 2 for _ in range(200))


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    backoff = Backoff(RetrySettings(max_retry_after_s=5), random.Random(1))
    assert backoff.delay(0, UpstreamRateLimited("x", retry_after=3)) == 3
    assert backoff.delay(0, UpstreamRateLimited("x", retry_after=30)) is None
