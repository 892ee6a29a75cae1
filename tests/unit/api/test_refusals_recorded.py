"""Every request gets a ledger record, those refused before the pipeline included (bad key, malformed
body, unknown model, invalid parameter); and the stages' own counters reach /metrics."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.unit.api.test_access import ADMIN, access_settings, admin

from tollhouse.app import create_app

CHAT = "/v1/chat/completions"


def rows(db: Path) -> list[tuple[object, ...]]:
    deadline = time.monotonic() + 5
    while True:
        with sqlite3.connect(db) as conn:
            found = conn.execute("SELECT status, model, error_class, key_id FROM ledger").fetchall()
        if len(found) >= 5 or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_refused_requests_are_recorded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TH_TEST_ADMIN", ADMIN)
    with TestClient(create_app(access_settings(tmp_path)), raise_server_exceptions=False) as c:
        key = admin(c, "POST", "/admin/keys", {"name": "r"})["key"]
        auth = {"authorization": f"Bearer {key}"}
        msg = [{"role": "user", "content": "hi"}]
        assert (
            c.post(
                CHAT, json={"model": "priced", "messages": msg}, headers={"authorization": "Bearer th-wrong"}
            ).status_code
            == 401
        )
        assert c.post(CHAT, content=b"{not json", headers=auth).status_code == 400
        assert c.post(CHAT, json={"model": "nope", "messages": msg}, headers=auth).status_code == 404
        r = c.post(CHAT, json={"model": "priced", "messages": msg, "max_tokens": 10**9}, headers=auth)
        assert r.status_code == 400
        assert c.post(CHAT, json={"model": "priced", "messages": msg}, headers=auth).status_code == 200
    found = rows(tmp_path / "ledger.db")
    assert len(found) == 5, found  # one each, the successful one included, none twice
    by_status = sorted(((s, m, e) for s, m, e, _ in found), key=repr)
    assert by_status == sorted(
        [
            (200, "priced", None),
            (400, None, "InvalidRequest"),
            (400, "priced", "InvalidRequest"),
            (401, None, "AuthenticationFailed"),
            (404, "nope", "ModelNotFound"),
        ],
        key=repr,
    )
    assert [k for s, _, _, k in found if s == 401] == [None]


def test_store_error_and_unknown_cost_gauges_are_exported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TH_TEST_ADMIN", ADMIN)
    with TestClient(create_app(access_settings(tmp_path)), raise_server_exceptions=False) as c:
        text = c.get("/metrics", headers={"authorization": f"Bearer {ADMIN}"}).text  # auth is on
    assert 'tollhouse_store_errors{store="rate_limit"} 0.0' in text
    assert 'tollhouse_store_errors{store="ledger_journal"} 0.0' in text
    assert "tollhouse_unknown_cost_requests 0.0" in text
