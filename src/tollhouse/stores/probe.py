"""Which network stores the configuration needs (Redis, PostgreSQL) and a cheap round trip to each: used by
``/health/ready`` (through the runtime) and ``tollhouse check-config``. Each probe opens its own short-lived
connection, so it sees what a new process would see, and never waits longer than its timeout."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from tollhouse.settings import Settings
from tollhouse.stores.sql import dsn_from_env

PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class StoreTarget:
    name: str  # "redis", "database" (or "database:<ENV>" when several DSNs are configured)
    kind: Literal["redis", "postgres"]
    url: str
    used_by: tuple[str, ...]  # the settings that need it, e.g. ("limits", "budgets")

    @property
    def shown(self) -> str:
        """The URL without its password."""
        return redact(self.url)


@dataclass(frozen=True, slots=True)
class StoreCheck:
    target: StoreTarget
    ok: bool
    latency_ms: float
    detail: str


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def store_targets(settings: Settings) -> list[StoreTarget]:
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
    ):
        if on and cfg.backend == "postgres":
            dsn = dsn_from_env(cfg.postgres_dsn_env, section)
            dsns.setdefault(dsn, []).append(section)
            env_of.setdefault(dsn, cfg.postgres_dsn_env or "")
    for dsn, users in dsns.items():
        name = "database" if len(dsns) == 1 else f"database:{env_of[dsn]}"
        out.append(StoreTarget(name, "postgres", dsn, tuple(users)))
    return out


async def probe(target: StoreTarget, timeout_s: float = PROBE_TIMEOUT_S) -> StoreCheck:
    t0 = time.perf_counter()
    try:
        detail = await asyncio.wait_for(_round_trip(target, timeout_s), timeout_s)
        ok = True
    except TimeoutError:
        ok, detail = False, f"no answer within {timeout_s:g} s"
    except Exception as exc:  # any failure to connect or answer is "down", with its kind
        ok, detail = False, f"{type(exc).__name__}: {str(exc)[:200]}"
    return StoreCheck(target, ok, round((time.perf_counter() - t0) * 1000, 2), detail)


async def probe_all(settings: Settings, timeout_s: float = PROBE_TIMEOUT_S) -> list[StoreCheck]:
    return list(await asyncio.gather(*(probe(t, timeout_s) for t in store_targets(settings))))


async def _round_trip(target: StoreTarget, timeout_s: float) -> str:
    if target.kind == "redis":
        import redis.asyncio as aioredis

        client = aioredis.from_url(target.url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        try:
            await client.ping()
        finally:
            await client.aclose()
        return "PING"
    import asyncpg

    conn = await asyncpg.connect(target.url, timeout=timeout_s)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()
    return "SELECT 1"
