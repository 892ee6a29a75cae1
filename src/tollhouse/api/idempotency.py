"""``Idempotency-Key`` (pure ASGI): a POST retried with the same key gets the first result back, byte for
byte (streams included), without another provider call; a duplicate that arrives while the first is still
running waits for it. Keys are scoped by credential and path, and bound to the request body: the same key
with a different body is refused (422). Requests without the header pass straight through.

While the store (Redis) cannot be reached a request with a key is refused with 503 ``store_unavailable``
rather than run without the guarantee: the caller asked for at-most-once, and its retry with the same key
after the outage is safe (docs/FAILURES.md)."""

from __future__ import annotations

import hashlib
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tollhouse.api.deps import runtime_of
from tollhouse.api.render import render_error
from tollhouse.errors import (
    IdempotencyConflict,
    IdempotencyKeyReused,
    InvalidRequest,
    StoreUnavailable,
    TollhouseError,
)
from tollhouse.outage import Outage, cause
from tollhouse.runtime import IdempotencyStore, StoredResponse
from tollhouse.settings import IdempotencySettings
from tollhouse.types import RequestContext

log = logging.getLogger("tollhouse.idempotency")
REPLAY_HEADER = (b"x-tollhouse-idempotent-replay", b"true")
_MAX_KEY = 255


class Idempotency:
    """``store``: by default the runtime's (``Runtime.idempotency``, reached through the scope of each request
    that carries a key, as the runtime only exists once the lifespan has started)."""

    def __init__(
        self, app: ASGIApp, *, cfg: IdempotencySettings, store: IdempotencyStore | None = None
    ) -> None:
        self.app = app
        self.cfg = cfg
        self.store = store
        self.outage = Outage(
            "idempotency store", log, "requests with an Idempotency-Key are refused with 503"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key = credential = None
        for k, v in scope["headers"]:
            if k == b"idempotency-key":
                key = v
            elif k in (b"authorization", b"x-api-key"):
                credential = v
        if key is None:
            await self.app(scope, receive, send)
            return
        rid = scope.get("state", {}).get("request_id")
        try:
            if not key or len(key) > _MAX_KEY:
                raise InvalidRequest(f"Idempotency-Key must be 1 to {_MAX_KEY} characters.", param="header")
            body = await _read_body(receive)
            await self._handle(scope, receive, send, _scoped(credential, scope["path"], key), body)
        except TollhouseError as exc:
            await render_error(exc, rid)(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, key: str, body: bytes) -> None:
        fingerprint = hashlib.sha256(body).hexdigest()
        store = self.store if self.store is not None else runtime_of(scope).idempotency
        try:
            stored = await store.get(key)
            if stored is None and not await store.begin(key):
                stored = await store.wait(key, self.cfg.wait_s)
                if stored is None and not await store.begin(key):
                    raise IdempotencyConflict("A request with this Idempotency-Key is still in progress.")
        except TollhouseError:
            raise
        except Exception as exc:
            self.outage.failed(exc)
            raise StoreUnavailable("idempotency store", cause(exc)) from exc
        self.outage.ok()
        if stored is not None:
            if stored.fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was used with a different request body.", param="Idempotency-Key"
                )
            await _replay(stored, send)
            return
        # This caller runs the request; capture what it sends.
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        parts: list[bytes] = []
        size = 0
        complete = False
        sent_body = False

        async def replay_receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def capture(message: Message) -> None:
            nonlocal status, headers, size, complete
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size <= self.cfg.max_body_bytes:
                    parts.append(chunk)
                complete = not message.get("more_body", False)
            await send(message)

        resp: StoredResponse | None = None
        try:
            await self.app(scope, replay_receive, capture)
            if 200 <= status < 300 and complete and size <= self.cfg.max_body_bytes:
                ctx = scope.get("state", {}).get("ctx")
                if isinstance(ctx, RequestContext) and ctx.deployment and ctx.attempts:
                    headers.append((b"x-tollhouse-deployment", ctx.deployment.encode()))
                resp = StoredResponse(status, headers, b"".join(parts), fingerprint)
        finally:
            try:
                await store.finish(key, resp)
            except Exception as exc:  # the answer is sent; the lock expires by itself after wait_s
                self.outage.failed(exc, phase="finish")


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _replay(stored: StoredResponse, send: Send) -> None:
    await send(
        {"type": "http.response.start", "status": stored.status, "headers": [*stored.headers, REPLAY_HEADER]}
    )
    await send({"type": "http.response.body", "body": stored.body, "more_body": False})


def _scoped(credential: bytes | None, path: str, key: bytes) -> str:
    # The credential is hashed, never stored: two tenants' keys never collide, and no secret is kept.
    return hashlib.sha256(b"\0".join([credential or b"", path.encode(), key])).hexdigest()
