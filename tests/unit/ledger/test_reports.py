"""Cost reports: exact decimal USD sums, and no ``"None"`` model for requests refused before naming one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.contract.test_ledger_store import DAY1, rec

from tollhouse.ledger.reports import Reports, usd
from tollhouse.stores.base import LedgerStore
from tollhouse.stores.postgres import PostgresLedgerStore
from tollhouse.stores.sqlite import SqliteLedgerStore


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LedgerStore]:
    s: LedgerStore = (
        SqliteLedgerStore(str(tmp_path / "ledger.db"))
        if request.param == "sqlite"
        else PostgresLedgerStore(request.getfixturevalue("pg_dsn"))
    )
    await s.open()
    yield s
    await s.aclose()


async def test_costs_are_exact_decimals_and_name_only_real_models(store: LedgerStore) -> None:
    # 0.1 + 0.2 + 0.119 as floats is 0.41900000000000004; the report says 0.419.
    await store.write(
        [
            rec(1, cost_usd=0.1, user="alice"),
            rec(2, cost_usd=0.2, user="alice"),
            rec(3, cost_usd=0.119, model="m2", user="bob"),
            # Refused before naming a model (a bad key): no model, no cost, one error.
            rec(4, model=None, model_served=None, deployment=None, cost_usd=0.0, status=401, user=None),
        ]
    )
    assert 0.1 + 0.2 + 0.119 != 0.419  # the float noise the report must not show
    out = await Reports(store).costs(DAY1, DAY1 + 100)
    assert out["total_cost_usd"] == 0.419
    assert out["cost_by_model"] == {"m1": 0.3, "m2": 0.119}
    assert "None" not in out["cost_by_model"]
    assert out["total_requests"] == 4
    assert out["errors"] == 1
    assert out["average_cost_per_request_usd"] == 0.10475
    assert out["top_users"][0] == {"user": "alice", "cost_usd": 0.3, "requests": 2}
    usage = await Reports(store).usage("model", DAY1, DAY1 + 100)
    assert usage["totals"]["cost_usd"] == 0.419
    assert {r["model"]: r["cost_usd"] for r in usage["data"]}["m1"] == 0.3


def test_usd_rounds_to_ten_places_half_even() -> None:
    assert usd(0.41900000000000004) == 0.419
    assert usd(0.30000000000000004) == 0.3
    assert usd(1.5e-11) == 0.0
    assert usd(2.5e-10) == 2e-10  # half to even
    assert usd(None) == 0.0
