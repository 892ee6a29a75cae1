"""Rate limits: ``RateLimiter``
enforces each key's RPM / TPM (overall and per model) with token buckets in a ``RateLimitStore``: the
request's estimated tokens (prompt + output cap) are taken at admission and the difference to the actual
usage is given back (or taken) at settlement. See docs/adr/0007-reservations.md.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Awaitable, Callable, Hashable
from typing import Literal

from tollhouse.errors import Overloaded, PermissionDenied, RateLimited
from tollhouse.outage import Outage
from tollhouse.stores.base import Bucket, Decision, RateLimitStore
from tollhouse.tasks import Flusher
from tollhouse.types import SETTLED, Estimate, RequestContext, Reservation, Usage

log = logging.getLogger("tollhouse.limits")


def _reset(seconds: float) -> bytes:
    """OpenAI's duration format: ``1s``, ``6m0s``, ``250ms``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms".encode()
    minutes, secs = divmod(math.ceil(seconds), 60)
    return (f"{minutes}m{secs}s" if minutes else f"{secs}s").encode()


class Background:
    """Settlements against a remote store, off the request path and coalesced: deltas for the same
    counters are summed and applied once per ``interval_s``, so a busy key costs one round trip per
    interval instead of one per request. Refunds arrive up to ``interval_s`` late (admission is then
    briefly stricter, never looser, except for the rare request whose prompt estimate was low).
    ``drain`` applies what is pending, on shutdown."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self._pending: dict[Hashable, tuple[int, Callable[[int], Awaitable[None]]]] = {}
        self._flusher = Flusher(interval_s, lambda: bool(self._pending), self.flush)

    def add(self, key: Hashable, delta: int, apply: Callable[[int], Awaitable[None]]) -> None:
        cur = self._pending.get(key)
        self._pending[key] = (delta + (cur[0] if cur is not None else 0), apply)
        self._flusher.kick()

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for delta, apply in pending.values():
            if delta:
                await apply(delta)  # the limiters' adjust methods log and count their own failures

    async def drain(self) -> None:
        await self._flusher.drain()


class _TokenReservation:
    """Settles the TPM buckets: gives back what was reserved beyond actual use (or takes the excess)."""

    __slots__ = ("_buckets", "_ctx", "_estimate", "_limiter")

    def __init__(
        self, limiter: RateLimiter, ctx: RequestContext, buckets: list[Bucket], estimate: Estimate
    ) -> None:
        self._limiter = limiter
        self._ctx = ctx
        self._buckets = buckets
        self._estimate = estimate

    async def settle(self, usage: Usage | None) -> None:
        if usage is not None:
            used = usage.total_tokens
        elif self._ctx.attempts == 0:
            used = 0  # refused or served before any upstream call
        else:
            used = self._estimate.prompt_tokens  # failed upstream: charge the prompt, not the output cap
        lim = self._limiter
        for b in self._buckets:
            delta = b.amount - used
            if delta:
                if lim.background is not None:
                    lim.background.add(b.key, delta, functools.partial(lim.adjust, b))
                else:
                    await lim.adjust(b, delta)


class RateLimiter:
    """Per-key limits from the principal (``KeyLimits``); callers without limits pass at no cost."""

    def __init__(
        self,
        store: RateLimitStore,
        on_store_error: Literal["open", "closed"] = "open",
        fallback: RateLimitStore | None = None,
        background: Background | None = None,
    ) -> None:
        self.store = store
        self.policy = on_store_error
        self.fallback = fallback
        self.background = background  # settle in tasks (remote store) or inline (in-process store)
        self.store_errors = 0
        closed = on_store_error == "closed" or fallback is None
        self.outage = Outage(
            "rate limit store",
            log,
            "refusing limited requests with 503" if closed else "limiting with this process's own counters",
        )

    async def admit(self, ctx: RequestContext, estimate: Estimate) -> Reservation:
        limits = ctx.principal.limits
        if limits is None:
            return SETTLED
        model = ctx.model_requested or ""
        if limits.models is not None and model not in limits.models:
            raise PermissionDenied(
                f"This API key may not use the model '{model}'.", param="model", code="model_not_allowed"
            )
        tokens = estimate.prompt_tokens + estimate.max_output_tokens
        key = f"{{{ctx.principal.key_id}}}"  # hash tag: one Redis Cluster slot per key
        req: list[Bucket] = []
        tok: list[Bucket] = []
        if limits.rpm:
            req.append(Bucket(key + ":rpm", limits.rpm, 1))
        if limits.tpm:
            tok.append(Bucket(key + ":tpm", limits.tpm, tokens))
        per_model = limits.per_model.get(model)
        if per_model is not None:
            rpm, tpm = per_model
            if rpm:
                req.append(Bucket(f"{key}:m:{model}:rpm", rpm, 1))
            if tpm:
                tok.append(Bucket(f"{key}:m:{model}:tpm", tpm, tokens))
        if not req and not tok:
            return SETTLED
        buckets = req + tok
        decision = await self._reserve(buckets)
        ctx.ratelimit_headers = _headers(buckets, decision, len(req))
        if not decision.allowed:
            if math.isinf(decision.retry_after_s):
                raise RateLimited(
                    f"This request needs about {tokens} tokens, more than this key's tokens-per-minute "
                    "limit. Lower max_tokens or shorten the prompt.",
                    code="tokens_exceed_limit",
                )
            raise RateLimited(
                "Rate limit reached for this API key. Retry after the time in the Retry-After header.",
                retry_after=decision.retry_after_s,
            )
        return _TokenReservation(self, ctx, tok, estimate) if tok else SETTLED

    async def admit_request(self, ctx: RequestContext) -> None:
        """A request that names no model and spends no tokens (``/v1/collections``): the key's requests per
        minute, the bucket every other request of the key counts in."""
        limits = ctx.principal.limits
        if limits is None or not limits.rpm:
            return
        bucket = Bucket(f"{{{ctx.principal.key_id}}}:rpm", limits.rpm, 1)
        decision = await self._reserve([bucket])
        ctx.ratelimit_headers = _headers([bucket], decision, 1)
        if not decision.allowed:
            raise RateLimited(
                "Rate limit reached for this API key. Retry after the time in the Retry-After header.",
                retry_after=decision.retry_after_s,
            )

    async def _reserve(self, buckets: list[Bucket]) -> Decision:
        try:
            decision = await self.store.reserve(buckets)
        except Exception as exc:
            self.store_errors += 1
            self.outage.failed(exc)
            if self.policy == "closed" or self.fallback is None:
                raise Overloaded("Rate limiting is unavailable; try again shortly.", retry_after=1) from None
            return await self.fallback.reserve(buckets)
        self.outage.ok()
        return decision

    async def adjust(self, bucket: Bucket, delta: int) -> None:
        try:
            await self.store.adjust(bucket.key, bucket.capacity, delta)
        except Exception as exc:
            self.store_errors += 1
            self.outage.failed(exc, phase="settle")
            if self.fallback is not None:
                await self.fallback.adjust(bucket.key, bucket.capacity, delta)

    async def aclose(self) -> None:
        if self.background is not None:
            await self.background.drain()
        await self.store.aclose()


def _headers(buckets: list[Bucket], decision: Decision, n_req: int) -> list[tuple[bytes, bytes]]:
    """The most constrained request bucket and token bucket, OpenAI-style."""
    out: list[tuple[bytes, bytes]] = []
    pairs = list(zip(buckets, decision.states, strict=True))
    for kind, group in (("requests", pairs[:n_req]), ("tokens", pairs[n_req:])):
        if not group:
            continue
        b, st = min(group, key=lambda p: p[1].remaining)
        out.append((f"x-ratelimit-limit-{kind}".encode(), str(b.capacity).encode()))
        out.append((f"x-ratelimit-remaining-{kind}".encode(), str(max(0, st.remaining)).encode()))
        out.append((f"x-ratelimit-reset-{kind}".encode(), _reset(st.reset_s)))
    return out
