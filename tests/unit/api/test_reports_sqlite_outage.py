"""Issue 12, defect 4 on SQLite: a ledger file that cannot be opened at start-up does not stop the gateway;
reports answer 503 naming the ledger (not 500) and work as soon as the file can be opened, by themselves."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from tests.conftest import mock_settings

from tollhouse.app import create_app
from tollhouse.settings import Settings


def test_reports_answer_503_until_the_sqlite_ledger_can_be_opened(tmp_path: Path) -> None:
    blocker = tmp_path / "ledger"
    blocker.write_text("")  # a file where the ledger's directory should be: the database cannot be opened
    base = mock_settings().model_dump()
    base["ledger"] = {
        "enabled": True,
        "sqlite_path": str(blocker / "ledger.db"),
        "journal_dir": str(tmp_path / "journal"),
        "flush_interval_s": 0.05,
        "retry_interval_s": 0.1,
    }
    with TestClient(create_app(Settings.model_validate(base)), raise_server_exceptions=False) as c:
        body = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}
        assert c.post("/v1/chat/completions", json=body).status_code == 200  # served and journaled
        for path in ("/v1/costs", "/v1/cache/stats"):
            r = c.get(path)
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "store_unavailable"
            assert "usage ledger (SQLite)" in r.json()["error"]["message"]
            assert r.headers["retry-after"] == "5"
        blocker.unlink()
        blocker.mkdir()  # the operator fixes the path: no restart, no model request
        r = c.get("/v1/costs")
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 10
        while c.get("/v1/costs").json()["total_requests"] != 1:  # the journaled record: nothing lost
            assert time.monotonic() < deadline, "the journaled record never reached the ledger"
            time.sleep(0.05)
