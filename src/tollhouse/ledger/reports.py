"""Usage reports read from the ledger: ``/admin/usage`` aggregates and the ``/v1/costs`` summary.

Reports query the database (never on the model request path). Records still in the journal — written
within ``ledger.flush_interval_s`` — are not yet counted.
"""

from __future__ import annotations

from typing import Any

from tollhouse.errors import NotFound, StoreUnavailable
from tollhouse.outage import Outage
from tollhouse.stores.base import USAGE_FIELDS, LedgerStore


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {f: 0 for f in USAGE_FIELDS}
    out["cost_usd"] = 0.0
    for r in rows:
        for f in USAGE_FIELDS:
            out[f] += r[f]
    out["cost_usd"] = round(out["cost_usd"], 10)
    return out


class Reports:
    """``outage``: the ledger writer's, so one outage of the database is logged once whoever meets it. While
    the database is down every report raises ``StoreUnavailable`` (a 503); the next report after it is back
    reconnects."""

    def __init__(self, store: LedgerStore | None, outage: Outage | None = None) -> None:
        self.store = store
        self.outage = outage  # None: the caller reports the error itself (the CLI)

    def _store(self) -> LedgerStore:
        if self.store is None:
            raise NotFound("The usage ledger is off (ledger.enabled: false).")
        return self.store

    async def _rows(self, group_by: str, since: float, until: float) -> list[dict[str, Any]]:
        try:
            rows = await self._store().usage(group_by, since, until)
        except StoreUnavailable as exc:
            if self.outage is not None:
                self.outage.failed(exc, phase="report")
            raise
        if self.outage is not None:
            self.outage.ok()
        return rows

    async def usage(self, group_by: str, since: float, until: float) -> dict[str, Any]:
        rows = await self._rows(group_by, since, until)
        data = [{group_by: r["grp"], **{f: r[f] for f in USAGE_FIELDS}} for r in rows]
        return {"group_by": group_by, "since": since, "until": until, "data": data, "totals": _totals(rows)}

    async def cache(self, since: float, until: float) -> dict[str, Any]:
        """Cache outcomes over every replica (from the ledger): hits, semantic hits, misses, USD saved."""
        t = _totals(await self._rows("model", since, until))
        looked = t["cache_hits"] + t["cache_misses"]
        return {
            "since": since,
            "until": until,
            "hits": t["cache_hits"] - t["semantic_hits"],
            "semantic_hits": t["semantic_hits"],
            "misses": t["cache_misses"],
            "hit_rate": round(t["cache_hits"] / looked, 4) if looked else 0.0,
            "saved_usd": round(t["saved_usd"], 8),
        }

    async def costs(self, since: float, until: float, top: int = 10) -> dict[str, Any]:
        """Totals, average cost per request, cache hit rate, cost by model, top users by cost."""
        by_model = await self._rows("model", since, until)
        by_user = await self._rows("user", since, until)
        t = _totals(by_model)
        n = t["requests"]
        return {
            "since": since,
            "until": until,
            "total_requests": n,
            "total_cost_usd": t["cost_usd"],
            "total_prompt_tokens": t["prompt_tokens"],
            "total_completion_tokens": t["completion_tokens"],
            "average_cost_per_request_usd": t["cost_usd"] / n if n else 0.0,
            "cache_hit_rate": t["cache_hits"] / n if n else 0.0,
            "cache_hits": t["cache_hits"],
            "cache_saved_usd": t["saved_usd"],
            "errors": t["errors"],
            "unknown_cost_requests": t["unknown_cost"],
            "cost_by_model": {str(r["grp"]): r["cost_usd"] for r in by_model},
            "top_users": [
                {"user": r["grp"], "cost_usd": r["cost_usd"], "requests": r["requests"]}
                for r in by_user[:top]
                if r["grp"] is not None
            ],
        }
