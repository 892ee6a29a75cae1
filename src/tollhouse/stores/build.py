"""Opens every store from its settings section: the one module that reads a ``backend:`` (or ``store:``)
setting. One function per capability; each returns its store unopened (the owner calls ``open`` / ``start``
in the lifespan and ``aclose`` on shutdown). Backend modules are imported only when chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from tollhouse.config.rag import RagSettings
from tollhouse.settings import (
    BreakerSettings,
    BudgetsSettings,
    CacheSettings,
    EvaluationSettings,
    IdempotencySettings,
    KeysSettings,
    LedgerSettings,
    LimitsSettings,
    PromptsSettings,
    RedisSettings,
    Settings,
)
from tollhouse.stores.probe import StoreTarget
from tollhouse.stores.sql import dsn_from_env

if TYPE_CHECKING:
    from tollhouse.stores.base import BudgetStore, KeyStore, LedgerStore, RateLimitStore
    from tollhouse.stores.breakers import BreakerState
    from tollhouse.stores.cache import CacheStore
    from tollhouse.stores.dashboard import UiStore as DashboardStore
    from tollhouse.stores.evaluation import EvalStore
    from tollhouse.stores.idempotency import IdempotencyStore
    from tollhouse.stores.prompt_counters import PromptCounters
    from tollhouse.stores.prompts import PromptStore
    from tollhouse.stores.rag_base import RagStore
    from tollhouse.stores.semantic import SemanticLog

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class WithFallback(Generic[S]):
    """A store and, when it is shared (Redis), the in-process one admission falls back on while it is
    unreachable. ``fallback is None``: the store is already in process."""

    store: S
    fallback: S | None = None

    @property
    def shared(self) -> bool:
        return self.fallback is not None


def key_store(cfg: KeysSettings) -> KeyStore:
    if cfg.backend == "postgres":
        from tollhouse.stores.postgres import PostgresKeyStore

        return PostgresKeyStore(dsn_from_env(cfg.postgres_dsn_env, "keys"))
    from tollhouse.stores.sqlite import SqliteKeyStore

    return SqliteKeyStore(cfg.sqlite_path)


def existing_key_store(cfg: KeysSettings) -> KeyStore | None:
    """``key_store``, or None when it is a SQLite file that does not exist yet (it holds no key, and opening
    it would create it)."""
    if cfg.backend == "sqlite" and cfg.sqlite_path != ":memory:" and not Path(cfg.sqlite_path).exists():
        return None
    return key_store(cfg)


def ledger_store(cfg: LedgerSettings) -> LedgerStore:
    if cfg.backend == "postgres":
        from tollhouse.stores.postgres import PostgresLedgerStore

        return PostgresLedgerStore(dsn_from_env(cfg.postgres_dsn_env, "ledger"))
    from tollhouse.stores.sqlite import SqliteLedgerStore

    return SqliteLedgerStore(cfg.sqlite_path)


def dashboard_store(cfg: LedgerSettings) -> DashboardStore:
    """The dashboard's users, sessions and audit log, beside the ledger: its PostgreSQL database, or a
    SQLite file next to its SQLite file."""
    if cfg.backend == "postgres":
        from tollhouse.stores.dashboard import PostgresUiStore

        return PostgresUiStore(dsn_from_env(cfg.postgres_dsn_env, "ledger"))
    from tollhouse.stores.dashboard import SqliteUiStore

    if cfg.sqlite_path == ":memory:":
        return SqliteUiStore(":memory:")
    return SqliteUiStore(str(Path(cfg.sqlite_path).with_name("tollhouse-ui.db")))


def rate_limit_store(cfg: LimitsSettings, redis: RedisSettings) -> WithFallback[RateLimitStore]:
    from tollhouse.stores.memory import MemoryRateLimitStore

    if cfg.backend == "redis":
        from tollhouse.stores.redis import RedisRateLimitStore

        return WithFallback(RedisRateLimitStore(redis.url, redis.prefix + "rl:"), MemoryRateLimitStore())
    return WithFallback(MemoryRateLimitStore())


def budget_store(cfg: BudgetsSettings, redis: RedisSettings) -> WithFallback[BudgetStore]:
    from tollhouse.stores.memory import MemoryBudgetStore

    if cfg.backend == "redis":
        from tollhouse.stores.redis import RedisBudgetStore

        return WithFallback(RedisBudgetStore(redis.url, redis.prefix), MemoryBudgetStore())
    return WithFallback(MemoryBudgetStore())


def cache_store(cfg: CacheSettings, redis: RedisSettings) -> CacheStore:
    """Where exact-cache answers live."""
    from tollhouse.stores import cache

    if cfg.backend == "redis":
        return cache.RedisCacheStore(redis.url, redis.prefix)
    if cfg.backend == "sqlite":
        return cache.SqliteCacheStore(cfg.sqlite_path)
    return cache.LRUStore(cfg.max_bytes)


class SemanticStoreSettings(Protocol):
    """What ``semantic_log`` reads: the settings' ``cache.semantic`` section or ``caching.SemanticConfig``."""

    @property
    def backend(self) -> str: ...

    @property
    def sqlite_path(self) -> str: ...

    @property
    def max_entries(self) -> int: ...


def semantic_log(cfg: SemanticStoreSettings, redis: RedisSettings | None = None) -> SemanticLog | None:
    """Where semantic-cache entries persist and are shared; None for ``memory`` (this process only).
    Raises ``ValueError`` for ``redis`` without a Redis server."""
    from tollhouse.stores import semantic

    if cfg.backend == "sqlite":
        return semantic.SqliteSemanticLog(cfg.sqlite_path, max_entries=cfg.max_entries)
    if cfg.backend == "redis":
        if redis is None:
            raise ValueError("cache.semantic.backend redis needs a Redis URL (redis.url)")
        return semantic.RedisSemanticLog(redis.url, redis.prefix, max_entries=cfg.max_entries)
    return None


def idempotency_store(cfg: IdempotencySettings, redis: RedisSettings) -> IdempotencyStore:
    from tollhouse.stores import idempotency

    if cfg.store == "redis":
        return idempotency.RedisIdempotencyStore(redis.url, redis.prefix, ttl_s=cfg.ttl_s, lock_s=cfg.wait_s)
    return idempotency.MemoryIdempotencyStore(cfg.ttl_s, cfg.max_entries)


def eval_store(cfg: EvaluationSettings) -> EvalStore:
    from tollhouse.stores import evaluation

    if cfg.backend == "postgres":
        return evaluation.PostgresEvalStore(dsn_from_env(cfg.postgres_dsn_env, "telemetry.evaluation"))
    return evaluation.SqliteEvalStore(cfg.sqlite_path)


def breaker_state(cfg: BreakerSettings, redis: RedisSettings) -> BreakerState | None:
    """Circuit state shared by every process; None for ``memory`` (each process keeps its own)."""
    if cfg.store == "redis":
        from tollhouse.stores.breakers import RedisBreakerState

        return RedisBreakerState(redis.url, redis.prefix)
    return None


def rag_store(cfg: RagSettings) -> RagStore:
    """Collections, documents, chunks and their vectors (retrieval; ADR 0020)."""
    if cfg.backend == "postgres":
        from tollhouse.stores.rag_postgres import PgRagStore

        return PgRagStore(
            dsn_from_env(cfg.postgres_dsn_env, "rag"),
            cfg.postgres_prefix,
            cfg.exact_search_limit,
            cfg.postgres_vectors,
        )
    from tollhouse.stores.rag_sqlite import SqliteRagStore

    return SqliteRagStore(cfg.sqlite_path, cfg.exact_search_limit)


def network_stores(settings: Settings) -> list[StoreTarget]:
    """Every Redis / PostgreSQL the settings use. Raises ``ConfigError`` for a PostgreSQL backend whose DSN
    variable is unset."""
    redis_users = [
        name
        for name, backend in (
            ("limits", settings.limits.backend),
            ("budgets", settings.budgets.backend),
            ("cache", settings.cache.backend if settings.cache.mode != "off" else "off"),
            (
                "cache.semantic",
                settings.cache.semantic.backend if settings.cache.mode == "semantic" else "off",
            ),
            ("idempotency", settings.idempotency.store if settings.idempotency.enabled else "off"),
            ("routing.breaker", settings.routing.breaker.store),
            ("prompts.counters", settings.prompts.counters if settings.prompts.enabled else "off"),
        )
        if backend == "redis"
    ]
    out: list[StoreTarget] = []
    if redis_users:
        out.append(StoreTarget("redis", "redis", settings.redis.url, tuple(redis_users)))
    dsns: dict[str, list[str]] = {}
    env_of: dict[str, str] = {}
    for section, cfg, on in (
        ("keys", settings.keys, True),
        ("ledger", settings.ledger, settings.ledger.enabled),
        ("telemetry.evaluation", settings.telemetry.evaluation, settings.telemetry.evaluation.enabled),
        ("prompts", settings.prompts, settings.prompts.enabled),
        ("rag", settings.rag, settings.rag.enabled),
    ):
        counters_pg = section == "prompts" and settings.prompts.counters == "postgres"
        uses_pg = cfg.backend == "postgres" or counters_pg
        if on and uses_pg:
            dsn = dsn_from_env(cfg.postgres_dsn_env, section)
            dsns.setdefault(dsn, []).append(section)
            env_of.setdefault(dsn, cfg.postgres_dsn_env or "")
    for dsn, users in dsns.items():
        name = "database" if len(dsns) == 1 else f"database:{env_of[dsn]}"
        out.append(StoreTarget(name, "postgres", dsn, tuple(users)))
    return out


def prompt_store(cfg: PromptsSettings) -> PromptStore:
    """Where prompt versions, labels and experiments live."""
    if cfg.backend == "postgres":
        from tollhouse.stores.prompts_sql import PostgresPromptStore

        return PostgresPromptStore(dsn_from_env(cfg.postgres_dsn_env, "prompts"))
    if cfg.backend == "sqlite":
        from tollhouse.stores.prompts_sql import SqlitePromptStore

        return SqlitePromptStore(cfg.sqlite_path)
    from tollhouse.stores.prompts import FilePromptStore

    return FilePromptStore(cfg.folder)


def prompt_counters(cfg: PromptsSettings, redis: RedisSettings) -> PromptCounters:
    """Per-version counters: shared through Redis, or this process's own."""
    from tollhouse.stores import prompt_counters as pc

    if cfg.counters == "redis":
        return pc.RedisPromptCounters(redis.url, redis.prefix)
    if cfg.counters == "postgres":
        return pc.PostgresPromptCounters(dsn_from_env(cfg.postgres_dsn_env, "prompts"))
    return pc.MemoryPromptCounters()
