"""The retrieval stage through HTTP (in-process app, mock model): the context budget, a stored prompt
version that retrieves, the stage's timing, requests without retrieval untouched, retrieval switched off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import mock_settings

from tollhouse.app import create_app
from tollhouse.settings import Settings

ADMIN = "admin-secret-for-rag-stage"
AUTH = {"authorization": f"Bearer {ADMIN}"}
LONG = " ".join(f"Rule {i}: the office plant number {i} is watered on day {i}." for i in range(60))


def settings(tmp_path: Path, **rag: Any) -> Settings:
    base = mock_settings(small={"context_window": 200, "max_output_tokens": 50}).model_dump()
    base["auth"] = {"admin_key_env": "TH_RAG_STAGE_ADMIN"}
    base["prompts"] = {"enabled": True, "folder": str(tmp_path / "prompts"), "reload_interval_s": 0.1}
    base["rag"] = {"sqlite_path": str(tmp_path / "rag.db"), "chunk_tokens": 40, "chunk_overlap": 0, **rag}
    return Settings.model_validate(base)


def _open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **rag: Any) -> Iterator[TestClient]:
    monkeypatch.setenv("TH_RAG_STAGE_ADMIN", ADMIN)
    with TestClient(create_app(settings(tmp_path, **rag)), raise_server_exceptions=False) as c:
        r = c.post("/admin/keys", json={"name": "app", "team": "ops"}, headers=AUTH)
        c.headers["authorization"] = f"Bearer {r.json()['key']}"
        yield c


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    yield from _open(tmp_path, monkeypatch, context_budget_tokens=300)


def fill(c: TestClient) -> None:
    assert c.post("/v1/collections", json={"name": "plants"}).status_code == 201
    r = c.post("/v1/collections/plants/documents", json={"id": "plants", "text": LONG})
    assert r.status_code == 201 and r.json()["chunks"] > 10


def chat(c: TestClient, model: str = "mock", **body: Any) -> Any:
    return c.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "When is plant 7 watered?"}], **body},
    )


def test_budget_caps_the_tokens_added(client: TestClient) -> None:
    fill(client)
    wide = chat(client, retrieval={"collection": "plants", "k": 20})
    assert wide.status_code == 200, wide.text
    assert 3 < len(wide.json()["citations"]) < 20  # the 300-token budget, not k, decided
    capped = chat(client, retrieval={"collection": "plants", "k": 20, "max_tokens": 60})
    assert len(capped.json()["citations"]) == 1
    # A model with a 200-token window takes at most a quarter of it (50 tokens): one 40-token chunk.
    small = chat(client, "small", retrieval={"collection": "plants", "k": 20})
    assert len(small.json()["citations"]) == 1
    assert small.json()["usage"]["prompt_tokens"] < wide.json()["usage"]["prompt_tokens"]
    assert "retrieval;dur=" in wide.headers["server-timing"]


def test_requests_without_retrieval_are_untouched(client: TestClient) -> None:
    r = chat(client)
    assert r.status_code == 200 and "citations" not in r.json()
    assert "retrieval" not in r.headers["server-timing"]


def test_a_prompt_version_can_retrieve(client: TestClient) -> None:
    fill(client)
    version = {
        "messages": [{"role": "system", "content": "Be brief."}],
        "model": "mock",
        "params": {"retrieval": {"collection": "plants", "k": 2}},
    }
    r = client.post("/admin/prompts/gardener/versions", json=version, headers=AUTH)
    assert r.status_code == 201, r.text
    r = client.post(
        "/v1/chat/completions",
        json={"prompt": {"id": "gardener"}, "messages": [{"role": "user", "content": "plant 7?"}]},
    )
    assert r.status_code == 200, r.text
    assert [c["marker"] for c in r.json()["citations"]] == ["[1]", "[2]"]
    bad = client.post(
        "/admin/prompts/bad/versions", headers=AUTH, json={**version, "params": {"retrieval": {"k": 2}}}
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "params.retrieval"


def test_bad_specs_are_400s(client: TestClient) -> None:
    fill(client)
    for spec, param in [
        ({"k": 2}, "retrieval"),
        ({"collection": "plants", "k": "2"}, "retrieval.k"),
        ({"collection": "plants", "colour": 1}, "retrieval"),
        ({"collection": "plants", "max_tokens": 0}, "retrieval.max_tokens"),
        ({"collection": "plants", "filters": [1]}, "filters"),
    ]:
        r = chat(client, retrieval=spec)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, (spec, r.text)
    assert chat(client, retrieval={"collection": "nope"}).status_code == 404


def test_retrieval_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for c in _open(tmp_path, monkeypatch, enabled=False):
        r = chat(c, retrieval={"collection": "plants"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "retrieval"
        assert c.get("/v1/collections").status_code == 404


def test_metrics_and_ledger_keep_the_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = {"enabled": True, "sqlite_path": str(tmp_path / "ledger.db"), "journal_dir": str(tmp_path / "j")}
    monkeypatch.setenv("TH_RAG_STAGE_ADMIN", ADMIN)
    base = settings(tmp_path).model_dump()
    base["ledger"] = {**ledger, "flush_interval_s": 0.05}
    with TestClient(create_app(Settings.model_validate(base)), raise_server_exceptions=False) as c:
        c.headers["authorization"] = (
            f"Bearer {c.post('/admin/keys', json={'name': 'a'}, headers=AUTH).json()['key']}"
        )
        fill(c)
        r = chat(c, retrieval={"collection": "plants", "k": 3})
        assert r.status_code == 200, r.text
        scrape = c.get("/metrics", headers=AUTH).text
        assert 'tollhouse_retrieval_chunks_total{model="mock"} 3.0' in scrape
        assert 'tollhouse_retrieval_duration_seconds_count{model="mock"} 1.0' in scrape
    # The app has shut down: the ledger flushed its records.
    import sqlite3

    rows = (
        sqlite3.connect(ledger["sqlite_path"])
        .execute(
            "SELECT retrieval_chunks, retrieval_tokens, retrieval_ms FROM ledger WHERE endpoint = 'chat'"
        )
        .fetchall()
    )
    assert len(rows) == 1 and rows[0][0] == 3 and rows[0][1] > 30 and rows[0][2] > 0


def test_upstream_embeddings_are_ledger_records_with_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A collection embedded by a deployment: each of its calls (the dimension probe, an ingest, a search,
    a chat request's query) is a record of the caller's, with tokens and cost."""
    ledger = {"enabled": True, "sqlite_path": str(tmp_path / "ledger.db"), "journal_dir": str(tmp_path / "j")}
    monkeypatch.setenv("TH_RAG_STAGE_ADMIN", ADMIN)
    base = mock_settings(emb={"pricing": {"input_per_1m": 100.0, "output_per_1m": 0.0}}).model_dump()
    base["auth"] = {"admin_key_env": "TH_RAG_STAGE_ADMIN"}
    base["rag"] = {"sqlite_path": str(tmp_path / "rag.db")}
    base["ledger"] = {**ledger, "flush_interval_s": 0.05}
    with TestClient(create_app(Settings.model_validate(base)), raise_server_exceptions=False) as c:
        made = c.post("/admin/keys", json={"name": "a", "team": "ops"}, headers=AUTH).json()
        c.headers["authorization"] = f"Bearer {made['key']}"
        assert c.post("/v1/collections", json={"name": "p", "embedding_model": "emb"}).status_code == 201
        r = c.post("/v1/collections/p/documents", json={"id": "plants", "text": LONG})
        assert r.status_code == 201, r.text
        assert c.post("/v1/collections/p/search", json={"query": "plant 7"}).status_code == 200
        r = chat(c, retrieval={"collection": "p", "k": 2})
        assert r.status_code == 200, r.text
        chat_id = r.headers["x-request-id"]
    import sqlite3

    rows = (
        sqlite3.connect(ledger["sqlite_path"])
        .execute(
            "SELECT request_id, key_id, team, deployment, prompt_tokens, cost_usd, status FROM ledger"
            " WHERE endpoint = 'rag_embeddings' ORDER BY ts"
        )
        .fetchall()
    )
    assert len(rows) == 4  # the dimension probe, the document's chunks, the search, the chat's query
    assert {(r[1], r[2], r[3], r[6]) for r in rows} == {(made["id"], "ops", "emb", 200)}
    assert all(r[4] > 0 and r[5] == pytest.approx(r[4] * 100 / 1e6) for r in rows)
    assert rows[3][0] == chat_id  # the chat request's query embedding carries its request id
    assert rows[1][4] > 10 * rows[2][4]  # the document cost more than a query
