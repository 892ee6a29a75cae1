"""Circuit state shared by every gateway process through Redis (``routing.breaker.store: redis``).

Each process still decides from its own observations, in memory, so a request never waits on Redis while
circuits are closed. What is shared is the verdict: a process whose breaker opens writes
``<prefix>breaker:<deployment>`` (expiring after the cooldown) and publishes the change; every other process
applies it at once (pub/sub) and re-reads the keys every ``RESYNC_S`` in case a message was missed. A probe
in half-open state needs a slot from a shared counter, so the whole fleet sends at most
``half_open_probes`` probes per cooldown; its verdict is published the same way. Redis being down degrades
to per-process breakers, never to failed requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tollhouse.routing.breaker import CircuitBreaker, State
from tollhouse.settings import RedisSettings
from tollhouse.tasks import cancel

if TYPE_CHECKING:
    from tollhouse.routing.router import Router

log = logging.getLogger("tollhouse.routing.shared")
RESYNC_S = 5.0
_CLAIM = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class SharedBreakers:
    """Publishes this process's circuit transitions and applies everyone else's."""

    def __init__(self, router: Router, cfg: RedisSettings) -> None:
        self._router = router
        self._redis = aioredis.Redis.from_url(cfg.url, decode_responses=True, socket_timeout=2.0)
        self._prefix = cfg.prefix
        self._channel = f"{cfg.prefix}breaker-events"
        self._origin = uuid.uuid4().hex
        self._tasks: set[asyncio.Task[None]] = set()
        self._claim = self._redis.register_script(_CLAIM)
        self._subscribed = asyncio.Event()

    @classmethod
    async def attach(cls, router: Router, cfg: RedisSettings) -> SharedBreakers:
        """Build, read the current shared state, start listening, and plug into ``router``."""
        shared = cls(router, cfg)
        router.shared = shared
        await shared._resync()
        shared._spawn(shared._listen())
        shared._spawn(shared._resync_forever())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(shared._subscribed.wait(), 2.0)
        return shared

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    # ---- outgoing -----------------------------------------------------------------------------------

    def publish(self, breaker: CircuitBreaker, state: State) -> None:
        """Called on a local transition (synchronously): send it without delaying the request."""
        if state == "half_open":
            return  # local: each process sees the cooldown end by itself
        ttl_ms = max(1, int((breaker.open_until - self._router.clock()) * 1000)) if state == "open" else 0
        self._spawn(self._publish(breaker.name, state, ttl_ms))

    async def _publish(self, name: str, state: State, ttl_ms: int) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                if state == "open":
                    pipe.set(self._key("breaker", name), "open", px=ttl_ms)
                else:
                    pipe.delete(self._key("breaker", name))
                pipe.delete(self._key("probe", name))
                pipe.publish(self._channel, f"{self._origin} {state} {ttl_ms} {name}")
                await pipe.execute()
        except RedisError as exc:
            log.warning("could not share circuit state", extra={"deployment": name, "error": str(exc)})

    async def claim_probe(self, name: str) -> bool:
        """One of the fleet's ``half_open_probes`` probe slots for this cooldown, or False."""
        cfg = self._router.cfg.breaker
        try:
            n = await self._claim(keys=[self._key("probe", name)], args=[int(cfg.cooldown_s * 1000)])
        except RedisError:
            return True  # Redis down: the local probe limit still applies
        return int(n) <= cfg.half_open_probes

    # ---- incoming -----------------------------------------------------------------------------------

    def _apply(self, message: str) -> None:
        origin, state, ttl_ms, name = message.split(" ", 3)
        target = self._router.targets.get(name)
        if origin == self._origin or target is None:
            return
        if state == "open":
            target.breaker.trip(self._router.clock(), int(ttl_ms) / 1000, notify=False)
        elif state == "closed":
            target.breaker.force_close()
        log.info("circuit %s (shared)", state, extra={"deployment": name, "circuit": state})

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    self._subscribed.set()
                    async for msg in pubsub.listen():
                        if msg.get("type") == "message":
                            self._apply(str(msg["data"]))
            except (RedisError, OSError) as exc:
                log.warning("circuit state channel lost; retrying", extra={"error": str(exc)})
                await asyncio.sleep(1.0)

    async def _resync(self) -> None:
        """Adopt every open circuit recorded in Redis (start-up, and in case a message was missed)."""
        names = list(self._router.targets)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for n in names:
                    pipe.pttl(self._key("breaker", n))
                ttls = await pipe.execute()
        except RedisError as exc:
            log.warning("could not read shared circuit state", extra={"error": str(exc)})
            return
        now = self._router.clock()
        for name, ttl in zip(names, ttls, strict=True):
            breaker = self._router.targets[name].breaker
            if int(ttl) > 0 and (breaker.state != "open" or breaker.open_until < now + ttl / 1000 - 1.0):
                breaker.trip(now, int(ttl) / 1000, notify=False)

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_S)
            await self._resync()

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            with contextlib.suppress(Exception):  # a failed task must not stop the others' shutdown
                await cancel(task)
        await self._redis.aclose()
