"""Upstream embeddings of retrieval in the ledger. When a collection's embedding model is a deployment (not
the embedded ``local-embed``), every call it makes — the query of a search, the chunks of an ingest — is a
ledger record of its own: endpoint ``rag_embeddings``, the deployment, its tokens and cost, the caller's key
and team, and the id of the request that caused it.

The caller is the principal the retrieval stage or ``/v1/collections`` sets in ``CALLER`` for the duration
of its work; a call made without one is recorded without a key.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

from tollhouse.context import request_id_var
from tollhouse.types import EmbeddingRequest, EmbeddingResponse, Principal, RequestContext

ENDPOINT = "rag_embeddings"
CALLER: ContextVar[Principal | None] = ContextVar("tollhouse_rag_caller", default=None)

Call = Callable[[EmbeddingRequest], Awaitable[EmbeddingResponse]]


class Ledger(Protocol):
    def record(self, ctx: RequestContext) -> None: ...


@contextmanager
def caller(principal: Principal) -> Iterator[None]:
    """Attribute the upstream embeddings made inside the block to ``principal``."""
    token = CALLER.set(principal)
    try:
        yield
    finally:
        CALLER.reset(token)


def metered(deployment: str, call: Call, ledger: Ledger) -> Call:
    """``call`` (a deployment's ``embed``), recording each call in ``ledger`` whether it succeeds or not."""

    async def run(req: EmbeddingRequest) -> EmbeddingResponse:
        ctx = RequestContext(request_id=request_id_var.get() or "", endpoint=ENDPOINT, principal=_who())
        ctx.model_requested = ctx.deployment = deployment
        ctx.attempts = 1  # an upstream call: without usage its cost is unknown, not 0
        t0 = time.perf_counter()
        try:
            resp = await call(req)
        except BaseException as exc:
            ctx.status = int(getattr(exc, "status", 500) or 500)
            ctx.error_type = getattr(exc, "type", None)
            ctx.error_class = type(exc).__name__
            raise
        else:
            ctx.model_served = resp.model
            ctx.usage = resp.usage
            return resp
        finally:
            ctx.upstream_seconds = time.perf_counter() - t0
            ctx.recorded = True
            ledger.record(ctx)

    return run


def _who() -> Principal:
    return CALLER.get() or Principal()
