"""Ledger seam: one usage record per request, written off the request path.

``record`` must not block: implementations buffer and flush in the background (``ledger/``). ``NoLedger``
keeps nothing (the access log line still records every request).
"""

from __future__ import annotations

from typing import Protocol

from tollhouse.types import RequestContext


class Ledger(Protocol):
    def record(self, ctx: RequestContext) -> None:
        """Queue the finished request's record. Never raises, never blocks."""
        ...

    async def aclose(self) -> None:
        """Flush everything queued."""
        ...


class NoLedger:
    def record(self, ctx: RequestContext) -> None:
        return None

    async def aclose(self) -> None:
        return None
