"""A cheap round trip to each network store the configuration needs (Redis, PostgreSQL; the list comes from
``stores.build.network_stores``): used by
``/health/ready`` (through the runtime) and ``tollhouse check-config``. Each probe opens its own short-lived
connection, so it sees what a new process would see, and never waits longer than its timeout."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

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


async def probe_all(targets: list[StoreTarget], timeout_s: float = PROBE_TIMEOUT_S) -> list[StoreCheck]:
    return list(await asyncio.gather(*(probe(t, timeout_s) for t in targets)))


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
