"""The `routing:`, `idempotency:` and `redis:` sections."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tollhouse.config.base import Strict

ErrorClass = Literal[
    "server_error", "rate_limit", "timeout", "connection", "overloaded", "context_window", "content_filter"
]
DEFAULT_FALLBACK_ON: list[ErrorClass] = ["server_error", "rate_limit", "timeout", "connection", "overloaded"]


class RetrySettings(Strict):
    """Retries of retry-safe failures (5xx, 429, timeouts, connection errors) within a model group."""

    max_retries: int = Field(
        2,
        ge=0,
        description="Further attempts within a group after the first (a different deployment "
        "first, without waiting; the same one again only after a backoff).",
    )
    base_delay_s: float = Field(0.2, ge=0, description="Backoff base: attempt n waits up to base·2ⁿ.")
    max_delay_s: float = Field(5.0, ge=0, description="Cap on one backoff wait (full jitter below it).")
    max_retry_after_s: float = Field(
        5.0,
        ge=0,
        description="Longest upstream Retry-After honoured; a longer one is not waited for "
        "(another deployment or a fallback is tried, else the 429 goes to the client).",
    )
    max_attempts: int = Field(6, ge=1, description="Provider calls per request, fallbacks included.")


class BreakerSettings(Strict):
    """Circuit breaker per deployment: closed → open → half-open → closed."""

    enabled: bool = Field(True, description="Off: deployments are never skipped for their failures.")
    failure_threshold: int = Field(5, ge=1, description="Consecutive failures that open the circuit.")
    failure_rate: float = Field(
        0.5, gt=0, le=1, description="Failure rate in the window that opens the circuit…"
    )
    min_requests: int = Field(20, ge=1, description="…once the window holds at least this many requests.")
    window_s: float = Field(30.0, gt=0, description="Length of the failure-rate window.")
    cooldown_s: float = Field(15.0, gt=0, description="Time open before probes are let through.")
    half_open_probes: int = Field(1, ge=1, description="Concurrent probe requests while half-open.")
    count_rate_limits: bool = Field(True, description="Upstream 429s count as failures.")
    store: Literal["memory", "redis"] = Field(
        "memory", description="`redis`: circuit state is shared by every gateway process on `redis.url`."
    )


class GroupMember(Strict):
    """One deployment in a model group."""

    model: str = Field(..., description="A `models:` entry's name (or an embedded model's).")
    weight: float = Field(1.0, gt=0, description="Share of traffic under `strategy: weighted`.")


class FallbackRule(Strict):
    """Where to go when a group fails with one of the listed error classes."""

    when: list[ErrorClass] = Field(
        default_factory=lambda: list(DEFAULT_FALLBACK_ON),
        description="Error classes that trigger this rule. `context_window` and `content_filter` must be "
        "listed to apply; a malformed request (400) never falls back.",
    )
    to: list[str] = Field(..., min_length=1, description="Model or group names, tried in order.")


class GroupConfig(Strict):
    """A public model name served by several deployments."""

    name: str = Field(..., min_length=1, description="Public model name clients send in `model`.")
    strategy: Literal["priority", "weighted", "least_busy", "latency"] = Field(
        "priority",
        description="`priority`: in listed order; `weighted`: random by weight; `least_busy`: fewest in "
        "flight; `latency`: lowest moving average of recent latency / time to first token.",
    )
    deployments: list[GroupMember] = Field(..., min_length=1, description="Members of the group.")
    fallbacks: list[FallbackRule] = Field(default_factory=list, description="Fallback chains, by error.")


CascadeCheck = Literal["empty", "refusal", "invalid_json"]
_ALL_CHECKS: tuple[CascadeCheck, ...] = ("empty", "refusal", "invalid_json")


class AutoRouterConfig(Strict):
    """A router name (e.g. `auto`) that classifies each request into a tier and serves it from that tier."""

    name: str = Field("auto", min_length=1, description="Public model name that selects this router.")
    simple: str = Field(..., description="Model or group for short, single-step requests.")
    standard: str = Field(..., description="Model or group for everything in between.")
    complex: str = Field(..., description="Model or group for long, multi-step or tool-using requests.")
    code: str | None = Field(
        None, description="Model or group for requests containing code (unset: complex)."
    )
    short_chars: int = Field(
        400, ge=0, description="Prompts shorter than this are `simple` (absent signals)."
    )
    long_chars: int = Field(8000, gt=0, description="Prompts at least this long are `complex`.")
    cascade: bool = Field(
        False,
        description="Non-streaming chat: answer from the chosen tier and escalate to the next when a "
        "check fails.",
    )
    checks: list[CascadeCheck] = Field(
        default_factory=lambda: list(_ALL_CHECKS),
        description="Cascade checks: empty answer, a refusal, invalid JSON when JSON was asked for.",
    )


class RoutingSettings(Strict):
    """Model groups, fallbacks, retries, circuit breakers and automatic routing."""

    request_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Deadline shared by every attempt of one request (until the first token for streams).",
    )
    retry: RetrySettings = Field(default_factory=RetrySettings, description="Retries.")
    breaker: BreakerSettings = Field(default_factory=BreakerSettings, description="Circuit breakers.")
    groups: list[GroupConfig] = Field(default_factory=list, description="Model groups.")
    auto: list[AutoRouterConfig] = Field(default_factory=list, description="Automatic routers.")
    seed: int | None = Field(None, description="Seed for weighted picks and jitter (unset: random).")


class IdempotencySettings(Strict):
    """`Idempotency-Key` on a POST: the first result is stored and replayed for retries with the same key."""

    enabled: bool = Field(True, description="Honour the `Idempotency-Key` header.")
    ttl_s: float = Field(86400.0, gt=0, description="How long a result is kept.")
    max_entries: int = Field(10000, gt=0, description="In-memory store: most results kept (oldest evicted).")
    max_body_bytes: int = Field(
        1024 * 1024, gt=0, description="Larger responses (streams included) are not stored."
    )
    wait_s: float = Field(
        300.0, gt=0, description="A concurrent duplicate waits this long for the first request's result."
    )
    store: Literal["memory", "redis"] = Field("memory", description="`redis`: shared by every process.")


class RedisSettings(Strict):
    """The Redis server used by features whose `store` is `redis`."""

    url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL (`redis://` or `rediss://`).")
    prefix: str = Field("tollhouse:", description="Prefix of every key and channel.")
