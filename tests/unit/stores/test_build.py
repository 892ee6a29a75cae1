"""``stores.build``: each setting opens the backend it names (nothing is connected yet), PostgreSQL DSNs come
only from the environment, and no other module reads a ``backend:`` / ``store:`` setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import tollhouse
from tollhouse.settings import (
    BreakerSettings,
    BudgetsSettings,
    CacheSettings,
    ConfigError,
    EvaluationSettings,
    IdempotencySettings,
    KeysSettings,
    LedgerSettings,
    LimitsSettings,
    RedisSettings,
    SemanticCacheSettings,
)
from tollhouse.stores import build
from tollhouse.stores.breakers import RedisBreakerState
from tollhouse.stores.cache import LRUStore, RedisCacheStore, SqliteCacheStore
from tollhouse.stores.evaluation import PostgresEvalStore, SqliteEvalStore
from tollhouse.stores.idempotency import MemoryIdempotencyStore, RedisIdempotencyStore
from tollhouse.stores.memory import MemoryBudgetStore, MemoryRateLimitStore
from tollhouse.stores.postgres import PostgresKeyStore, PostgresLedgerStore
from tollhouse.stores.redis import RedisBudgetStore, RedisRateLimitStore
from tollhouse.stores.semantic import RedisSemanticLog, SqliteSemanticLog
from tollhouse.stores.sqlite import SqliteKeyStore, SqliteLedgerStore

REDIS = RedisSettings(url="redis://127.0.0.1:1/0", prefix="p:")
DSN = "postgresql://nobody@127.0.0.1:1/none"


def test_keys_and_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(build.key_store(KeysSettings(sqlite_path=str(tmp_path / "k.db"))), SqliteKeyStore)
    assert isinstance(
        build.ledger_store(LedgerSettings(sqlite_path=str(tmp_path / "l.db"))), SqliteLedgerStore
    )
    monkeypatch.setenv("TH_DSN", DSN)
    keys = build.key_store(KeysSettings(backend="postgres", postgres_dsn_env="TH_DSN"))
    assert isinstance(keys, PostgresKeyStore) and keys.dsn == DSN
    ledger = build.ledger_store(LedgerSettings(backend="postgres", postgres_dsn_env="TH_DSN"))
    assert isinstance(ledger, PostgresLedgerStore)


@pytest.mark.parametrize(
    ("make", "section"),
    [
        (lambda env: build.key_store(KeysSettings(backend="postgres", postgres_dsn_env=env)), "keys"),
        (lambda env: build.ledger_store(LedgerSettings(backend="postgres", postgres_dsn_env=env)), "ledger"),
        (
            lambda env: build.eval_store(EvaluationSettings(backend="postgres", postgres_dsn_env=env)),
            "telemetry.evaluation",
        ),
    ],
)
def test_a_postgres_dsn_must_come_from_the_environment(
    make: object, section: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TH_MISSING_DSN", raising=False)
    with pytest.raises(ConfigError, match=rf"{re.escape(section)}\.postgres_dsn_env is not set"):
        make(None)  # type: ignore[operator]
    with pytest.raises(ConfigError, match="TH_MISSING_DSN"):
        make("TH_MISSING_DSN")  # type: ignore[operator]


def test_an_absent_sqlite_key_file_is_not_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keys.db"
    assert build.existing_key_store(KeysSettings(sqlite_path=str(path))) is None
    assert not path.exists()
    assert isinstance(build.existing_key_store(KeysSettings(sqlite_path=":memory:")), SqliteKeyStore)
    path.touch()
    assert isinstance(build.existing_key_store(KeysSettings(sqlite_path=str(path))), SqliteKeyStore)
    monkeypatch.setenv("TH_DSN", DSN)
    cfg = KeysSettings(backend="postgres", postgres_dsn_env="TH_DSN")
    assert isinstance(build.existing_key_store(cfg), PostgresKeyStore)


def test_admission_stores_fall_back_in_process_only_when_shared() -> None:
    rl = build.rate_limit_store(LimitsSettings(), REDIS)
    assert isinstance(rl.store, MemoryRateLimitStore) and rl.fallback is None and not rl.shared
    rl = build.rate_limit_store(LimitsSettings(backend="redis"), REDIS)
    assert isinstance(rl.store, RedisRateLimitStore) and rl.store.prefix == "p:rl:"
    assert isinstance(rl.fallback, MemoryRateLimitStore) and rl.shared
    spend = build.budget_store(BudgetsSettings(), REDIS)
    assert isinstance(spend.store, MemoryBudgetStore) and not spend.shared
    spend = build.budget_store(BudgetsSettings(backend="redis"), REDIS)
    assert isinstance(spend.store, RedisBudgetStore) and spend.store.prefix == "p:"
    assert isinstance(spend.fallback, MemoryBudgetStore)


def test_cache_stores(tmp_path: Path) -> None:
    lru = build.cache_store(CacheSettings(max_bytes=4096), REDIS)
    assert isinstance(lru, LRUStore) and lru.max_bytes == 4096
    assert isinstance(
        build.cache_store(CacheSettings(backend="sqlite", sqlite_path=str(tmp_path)), REDIS), SqliteCacheStore
    )
    rd = build.cache_store(CacheSettings(backend="redis"), REDIS)
    assert isinstance(rd, RedisCacheStore) and rd.base == "p:cache:"
    assert build.semantic_log(SemanticCacheSettings(), REDIS) is None
    sq = build.semantic_log(SemanticCacheSettings(backend="sqlite", sqlite_path="s.db", max_entries=9), REDIS)
    assert isinstance(sq, SqliteSemanticLog) and sq.path == "s.db" and sq.max_entries == 9
    log = build.semantic_log(SemanticCacheSettings(backend="redis", max_entries=9), REDIS)
    assert isinstance(log, RedisSemanticLog) and log.stream == "p:semantic:log" and log.maxlen == 9


def test_idempotency_evaluation_and_breakers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(build.idempotency_store(IdempotencySettings(), REDIS), MemoryIdempotencyStore)
    assert isinstance(
        build.idempotency_store(IdempotencySettings(store="redis"), REDIS), RedisIdempotencyStore
    )
    assert isinstance(
        build.eval_store(EvaluationSettings(sqlite_path=str(tmp_path / "e.db"))), SqliteEvalStore
    )
    monkeypatch.setenv("TH_DSN", DSN)
    pg = build.eval_store(EvaluationSettings(backend="postgres", postgres_dsn_env="TH_DSN"))
    assert isinstance(pg, PostgresEvalStore) and pg.dsn == DSN
    assert build.breaker_state(BreakerSettings(), REDIS) is None
    assert isinstance(build.breaker_state(BreakerSettings(store="redis"), REDIS), RedisBreakerState)


def test_only_the_builder_reads_backend_settings() -> None:
    src = Path(tollhouse.__file__).parent
    choice = re.compile(r"\.(backend|store)\s*(==|!=|\bin\b)")
    readers = {p.relative_to(src).as_posix() for p in src.rglob("*.py") if choice.search(p.read_text())}
    assert readers == {"stores/build.py"}
