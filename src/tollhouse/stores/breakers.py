"""``BreakerState``: circuit verdicts shared by every gateway process (``routing.breaker.store: redis``).

An open circuit is recorded as ``<prefix>breaker:<deployment>`` (expiring when its cooldown ends) and every
transition is published on ``<prefix>breaker-events``, tagged with the instance that made it. Half-open
probes count in ``<prefix>probe:<deployment>``, which lives one cooldown, so the fleet as a whole sends a
bounded number. One backend, Redis; ``routing.shared.SharedBreakers`` applies what it reports.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import redis.asyncio as aioredis

Verdict = Literal["open", "closed"]


@dataclass(frozen=True, slots=True)
class CircuitEvent:
    """A transition another process made: ``ttl_ms`` is how long the circuit stays open (0 when closed)."""

    name: str
    state: str
    ttl_ms: int


class BreakerState(Protocol):
    async def publish(self, name: str, state: Verdict, ttl_ms: int) -> None:
        """Record the circuit's state (open: for ``ttl_ms``; closed: cleared), reset its probe count and
        tell every follower. Raises on a store error."""
        ...

    async def claim_probe(self, name: str, window_ms: int) -> int:
        """Count one probe of this circuit; returns how many were counted in the current window (which
        starts with its first claim and lasts ``window_ms``), this one included. Raises on a store error."""
        ...

    async def open_ms(self, names: Sequence[str]) -> list[int]:
        """Milliseconds each circuit stays open (0: not open), in the order of ``names``."""
        ...

    async def follow(self, apply: Callable[[CircuitEvent], None], subscribed: asyncio.Event) -> None:
        """Call ``apply`` for every transition another instance publishes, until cancelled; sets
        ``subscribed`` once listening. Raises when the connection is lost (callers retry)."""
        ...

    async def aclose(self) -> None: ...


_CLAIM = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RedisBreakerState:
    def __init__(self, url: str, prefix: str) -> None:
        self._redis = aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=2.0)
        self._prefix = prefix
        self._channel = f"{prefix}breaker-events"
        self.origin = uuid.uuid4().hex
        self._claim = self._redis.register_script(_CLAIM)

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    async def publish(self, name: str, state: Verdict, ttl_ms: int) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            if state == "open":
                pipe.set(self._key("breaker", name), "open", px=max(1, ttl_ms))
            else:
                pipe.delete(self._key("breaker", name))
            pipe.delete(self._key("probe", name))
            pipe.publish(self._channel, f"{self.origin} {state} {ttl_ms} {name}")
            await pipe.execute()

    async def claim_probe(self, name: str, window_ms: int) -> int:
        return int(await self._claim(keys=[self._key("probe", name)], args=[window_ms]))

    async def open_ms(self, names: Sequence[str]) -> list[int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for n in names:
                pipe.pttl(self._key("breaker", n))
            ttls = await pipe.execute()
        return [max(0, int(t)) for t in ttls]

    async def follow(self, apply: Callable[[CircuitEvent], None], subscribed: asyncio.Event) -> None:
        async with self._redis.pubsub() as pubsub:
            await pubsub.subscribe(self._channel)
            subscribed.set()
            async for msg in pubsub.listen():
                if msg.get("type") != "message":
                    continue
                origin, state, ttl_ms, name = str(msg["data"]).split(" ", 3)
                if origin != self.origin:
                    apply(CircuitEvent(name, state, int(ttl_ms)))

    async def aclose(self) -> None:
        await self._redis.aclose()
