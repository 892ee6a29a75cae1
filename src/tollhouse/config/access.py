"""The `keys:`, `limits:` and `ledger:` sections: API keys, rate limits and the usage ledger (issue 3)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from tollhouse.config.base import Strict

# Bounds of what a key, user or team may be given (config, `/admin/keys`, `tollhouse keys`). Budgets are
# counted in integer micro-USD, shared through Redis whose Lua numbers are doubles (exact to 2**53): a
# billion dollars (1e15 micro-USD) keeps every sum exact. Rates are far above any real upstream's.
MAX_BUDGET_USD = 1_000_000_000.0
MAX_RPM = 100_000_000
MAX_TPM = 100_000_000_000
BudgetUsd = Annotated[float, Field(gt=0, le=MAX_BUDGET_USD, allow_inf_nan=False)]
RequestsPerMinute = Annotated[int, Field(gt=0, le=MAX_RPM)]
TokensPerMinute = Annotated[int, Field(gt=0, le=MAX_TPM)]


class KeysSettings(Strict):
    """API keys issued by the gateway (`tollhouse keys …`, `/admin/keys`). Stored hashed; every process keeps
    them in memory and reloads when the store's version counter moves."""

    backend: Literal["sqlite", "postgres"] = Field(
        "sqlite", description="Where keys are kept: `sqlite` (one host) or `postgres` (shared by replicas)."
    )
    sqlite_path: str = Field("tollhouse.db", description="SQLite file (with `backend: sqlite`).")
    postgres_dsn_env: str | None = Field(
        None, description="Name of the environment variable holding the PostgreSQL DSN (`backend: postgres`)."
    )
    refresh_interval_s: float = Field(
        0.25,
        gt=0,
        le=1,
        description="How often each process polls the store's version counter: a created, updated or "
        "revoked key is seen by every process within this long (plus one reload).",
    )
    touch_interval_s: float = Field(
        60.0, gt=0, description="How often `last_used_at` is written back (batched, off the request path)."
    )


class LimitsSettings(Strict):
    """Per-key rate limits (RPM / TPM from each key, optionally per model): token buckets with bursts of one
    minute's allowance, tokens reserved from an estimate at admission and settled against actual usage."""

    backend: Literal["memory", "redis"] = Field(
        "memory",
        description="`memory` (per process; exact for one process) or `redis` (shared by every replica, one "
        "atomic Lua round trip per admission).",
    )
    on_store_error: Literal["open", "closed"] = Field(
        "open",
        description="When Redis is unreachable: `open` admits through a per-process fallback limiter, "
        "`closed` answers 503. Either way it is logged and counted.",
    )


class LedgerSettings(Strict):
    """Usage ledger: one record per request (failed and blocked ones included), journaled locally at once,
    written to the database in batches, replayed from the journal after a crash or a database outage."""

    enabled: bool = Field(True, description="Keep the ledger (`/admin/usage` and `/v1/costs` read it).")
    backend: Literal["sqlite", "postgres"] = Field("sqlite", description="Where records are written.")
    sqlite_path: str = Field("tollhouse.db", description="SQLite file (with `backend: sqlite`).")
    postgres_dsn_env: str | None = Field(
        None, description="Name of the environment variable holding the PostgreSQL DSN (`backend: postgres`)."
    )
    journal_dir: str = Field(
        "tollhouse-ledger",
        description="Directory of the local append-only journal: every record is appended here before it "
        "is acknowledged and deleted once it is in the database (the spill when the database is down).",
    )
    flush_interval_s: float = Field(
        1.0, gt=0, description="Longest time a record waits before it is written."
    )
    batch_size: int = Field(500, gt=0, description="A batch is written as soon as this many records wait.")
    retention_days: float | None = Field(
        None, gt=0, description="Delete records older than this (checked hourly); unset keeps them all."
    )
    retry_interval_s: float = Field(
        2.0, gt=0, description="While the database is down, how often the journal's backlog is retried."
    )


class BudgetLimit(Strict):
    """Spend caps in USD; unset means no cap for that period."""

    daily_usd: BudgetUsd | None = Field(None, description="USD per UTC day (at most 1e9).")
    monthly_usd: BudgetUsd | None = Field(None, description="USD per UTC calendar month (at most 1e9).")


class BudgetAlerts(Strict):
    """Alerts when a budget's spend crosses a share of its limit: a log line, and a signed webhook POST
    (at-least-once: retried until accepted; each alert has an id, so receivers drop duplicates)."""

    thresholds: list[float] = Field(
        default_factory=lambda: [0.5, 0.8, 1.0], description="Shares of a budget that raise an alert."
    )
    webhook_url: str | None = Field(
        None, description="Where alerts are POSTed (JSON); unset: log lines only."
    )
    secret_env: str | None = Field(
        None,
        description="Name of the environment variable holding the HMAC-SHA256 key that signs each POST "
        "(`x-tollhouse-signature: t=<unix>,v1=<hex of HMAC(key, '<t>.<body>')>`).",
    )
    check_interval_s: float = Field(5.0, gt=0, description="How often the budgets in use are checked.")
    max_attempts: int = Field(8, ge=1, description="Delivery attempts per alert (exponential backoff).")
    retry_base_s: float = Field(1.0, gt=0, description="First delay between attempts; doubles, up to 60 s.")


class BudgetsSettings(Strict):
    """Spend budgets per key (set on the key), per user and per team (here), per day and month. Admission
    reserves the request's worst-case cost (prompt estimate + `max_tokens` at the deployment's prices) and
    settlement corrects it to the actual cost, so concurrent requests overspend by at most one request's
    worst case."""

    backend: Literal["memory", "redis"] = Field(
        "memory",
        description="`memory` (one process) or `redis` (shared by every replica; not Redis Cluster).",
    )
    on_exceeded: Literal["block", "downgrade"] = Field(
        "block",
        description="Over budget: `block` the request, or `downgrade` it to `downgrade_to` (admitted only if "
        "its own worst case still fits; else blocked).",
    )
    downgrade_to: str | None = Field(
        None, description="Model or group requests are sent to when over budget (`on_exceeded: downgrade`)."
    )
    exceeded_status: Literal[402, 429] = Field(
        429, description="HTTP status of a request refused for budget (error code `budget_exceeded`)."
    )
    on_store_error: Literal["open", "closed"] = Field(
        "closed",
        description="When Redis is unreachable: `closed` answers 503, `open` admits with per-process "
        "counters (spend may then exceed a budget). Logged and counted either way.",
    )
    alerts: BudgetAlerts = Field(default_factory=BudgetAlerts, description="Budget alerts.")
    users: dict[str, BudgetLimit] = Field(
        default_factory=dict, description="Budgets by user (the `user` of the calling key)."
    )
    teams: dict[str, BudgetLimit] = Field(
        default_factory=dict, description="Budgets by team (the `team` of the calling key)."
    )

    @model_validator(mode="after")
    def _downgrade_target(self) -> BudgetsSettings:
        if self.on_exceeded == "downgrade" and not self.downgrade_to:
            raise ValueError("budgets.on_exceeded is downgrade but budgets.downgrade_to is not set")
        return self


class EmergencySettings(Strict):
    """Global emergency mode: once total spend (all keys) in the UTC day crosses `daily_spend_usd`, every
    request that is not served from the response cache goes to `model`, and inputs above
    `max_input_tokens` are refused (400, code `emergency_input_cap`). Spend is counted in the budget store
    (`budgets.backend`), so every replica switches together; it switches back at the next UTC day."""

    daily_spend_usd: BudgetUsd | None = Field(
        None, description="Spend per UTC day that turns it on (at most 1e9); unset: off."
    )
    model: str | None = Field(None, description="The cheap model or group everything is routed to.")
    max_input_tokens: int | None = Field(
        None, gt=0, description="Largest (estimated) prompt accepted meanwhile."
    )
    check_interval_s: float = Field(1.0, gt=0, description="How often the day's total spend is read.")
