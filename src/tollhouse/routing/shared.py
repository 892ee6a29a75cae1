"""Circuit state shared by every gateway process (``routing.breaker.store: redis``), over a
``stores.breakers.BreakerState``.

Each process still decides from its own observations, in memory, so a request never waits on the store while
circuits are closed. What is shared is the verdict: a process whose breaker opens records it (expiring
after the cooldown) and publishes the change; every other process applies it at once and re-reads the
recorded state every ``RESYNC_S`` in case a message was missed. A probe in half-open state needs a slot from
a shared counter, so the whole fleet sends at most ``half_open_probes`` probes per cooldown; its verdict is
published the same way. The store being down degrades to per-process breakers, never to failed requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from tollhouse.outage import Outage
from tollhouse.routing.breaker import CircuitBreaker, State
from tollhouse.stores.breakers import BreakerState, CircuitEvent
from tollhouse.tasks import cancel

if TYPE_CHECKING:
    from tollhouse.routing.router import Router

log = logging.getLogger("tollhouse.routing.shared")
RESYNC_S = 5.0
RETRY_S = 1.0  # pause before listening again after the connection was lost


class SharedBreakers:
    """Publishes this process's circuit transitions and applies everyone else's."""

    def __init__(self, router: Router, state: BreakerState) -> None:
        self._router = router
        self._state = state
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscribed = asyncio.Event()
        self.outage = Outage(
            "shared circuit state store", log, "each process keeps its own circuits meanwhile"
        )

    @classmethod
    async def start(cls, router: Router, state: BreakerState) -> SharedBreakers:
        """Build, read the current shared state, start listening, and plug into ``router`` (which closes
        it, and ``state`` with it)."""
        shared = cls(router, state)
        router.shared = shared
        await shared._resync()
        shared._spawn(shared._listen())
        shared._spawn(shared._resync_forever())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(shared._subscribed.wait(), 2.0)
        return shared

    # ---- outgoing -----------------------------------------------------------------------------------

    def publish(self, breaker: CircuitBreaker, state: State) -> None:
        """Called on a local transition (synchronously): send it without delaying the request."""
        if state == "half_open":
            return  # local: each process sees the cooldown end by itself
        ttl_ms = max(1, int((breaker.open_until - self._router.clock()) * 1000)) if state == "open" else 0
        self._spawn(self._publish(breaker.name, state, ttl_ms))

    async def _publish(self, name: str, state: State, ttl_ms: int) -> None:
        try:
            await self._state.publish(name, "open" if state == "open" else "closed", ttl_ms)
        except Exception as exc:
            self.outage.failed(exc, deployment=name)
            return
        self.outage.ok()

    async def claim_probe(self, name: str) -> bool:
        """One of the fleet's ``half_open_probes`` probe slots for this cooldown, or False."""
        cfg = self._router.cfg.breaker
        try:
            n = await self._state.claim_probe(name, int(cfg.cooldown_s * 1000))
        except Exception as exc:
            self.outage.failed(exc)
            return True  # store down: the local probe limit still applies
        return n <= cfg.half_open_probes

    # ---- incoming -----------------------------------------------------------------------------------

    def _apply(self, event: CircuitEvent) -> None:
        target = self._router.targets.get(event.name)
        if target is None:
            return
        if event.state == "open":
            target.breaker.trip(self._router.clock(), event.ttl_ms / 1000, notify=False)
        elif event.state == "closed":
            target.breaker.force_close()
        log.info("circuit %s (shared)", event.state, extra={"deployment": event.name, "circuit": event.state})

    async def _listen(self) -> None:
        while True:
            try:
                await self._state.follow(self._apply, self._subscribed)
            except Exception as exc:
                self.outage.failed(exc, phase="follow")
                await asyncio.sleep(RETRY_S)

    async def _resync(self) -> None:
        """Adopt every open circuit the store records (start-up, and in case a message was missed)."""
        names = list(self._router.targets)
        try:
            open_ms = await self._state.open_ms(names)
        except Exception as exc:
            self.outage.failed(exc, phase="resync")
            return
        self.outage.ok()
        now = self._router.clock()
        for name, ms in zip(names, open_ms, strict=True):
            breaker = self._router.targets[name].breaker
            if ms > 0 and (breaker.state != "open" or breaker.open_until < now + ms / 1000 - 1.0):
                breaker.trip(now, ms / 1000, notify=False)

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_S)
            await self._resync()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            with contextlib.suppress(Exception):  # a failed task must not stop the others' shutdown
                await cancel(task)
        await self._state.aclose()
