"""``/v1/collections`` over HTTP: lifecycle, idempotent upserts, search, bad input, tenant isolation."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import mock_settings

from tollhouse.app import create_app
from tollhouse.settings import Settings

ADMIN = "admin-secret-for-rag-tests"
DOCS = {
    "leave": "# Leave\nEmployees get 25 days of paid leave per year. Unused days expire at the end of March.",
    "travel": "# Travel\nTrain tickets are reimbursed within 30 days. Flights need a manager's approval.",
    "security": "# Security\nLaptops must use full-disk encryption. Report a lost badge to the front desk.",
}


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TH_RAG_ADMIN", ADMIN)
    base = mock_settings().model_dump()
    base["auth"] = {"admin_key_env": "TH_RAG_ADMIN"}
    base["rag"] = {"sqlite_path": str(tmp_path / "rag.db"), "max_document_bytes": 1_000_000}
    with TestClient(create_app(Settings.model_validate(base)), raise_server_exceptions=False) as c:
        yield c


def key(c: TestClient, team: str) -> dict[str, str]:
    r = c.post("/admin/keys", json={"name": team, "team": team}, headers={"authorization": f"Bearer {ADMIN}"})
    assert r.status_code < 300, r.text
    return {"authorization": f"Bearer {r.json()['key']}"}


def ingest(c: TestClient, h: dict[str, str], coll: str = "handbook") -> None:
    assert c.post("/v1/collections", json={"name": coll}, headers=h).status_code == 201
    for doc_id, text in DOCS.items():
        r = c.post(
            f"/v1/collections/{coll}/documents",
            headers=h,
            json={"id": doc_id, "text": text, "kind": "markdown", "metadata": {"topic": doc_id}},
        )
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "created"


def test_lifecycle_search_and_idempotent_upsert(client: TestClient) -> None:
    h = key(client, "red")
    ingest(client, h)
    again = client.post(
        "/v1/collections/handbook/documents",
        headers=h,
        json={"id": "leave", "text": DOCS["leave"], "kind": "markdown", "metadata": {"topic": "leave"}},
    )
    assert again.json()["status"] == "unchanged"
    info = client.get("/v1/collections/handbook", headers=h).json()
    assert (info["documents"], info["embedding_model"], info["dimensions"]) == (3, "local-embed", 384)
    r = client.post(
        "/v1/collections/handbook/search", headers=h, json={"query": "how many vacation days", "k": 2}
    )
    assert r.status_code == 200, r.text
    hits = r.json()["data"]
    assert hits[0]["document_id"] == "leave" and hits[0]["marker"] == "[1]"
    start, end = hits[0]["span"]
    assert DOCS["leave"][start:end] == hits[0]["text"]
    only = client.post(
        "/v1/collections/handbook/search",
        headers=h,
        json={"query": "vacation days", "filters": {"topic": {"$in": ["travel", "security"]}}},
    )
    assert {x["document_id"] for x in only.json()["data"]} <= {"travel", "security"}
    assert client.delete("/v1/collections/handbook/documents/leave", headers=h).json()["deleted"] is True
    r = client.post(
        "/v1/collections/handbook/search", headers=h, json={"query": "paid leave per year", "k": 5}
    )
    assert "leave" not in {x["document_id"] for x in r.json()["data"]}
    assert client.get("/v1/collections/handbook/documents", headers=h).json()["data"][0]["id"] == "security"
    assert client.delete("/v1/collections/handbook", headers=h).status_code == 200
    assert client.get("/v1/collections", headers=h).json()["data"] == []


def test_a_key_cannot_see_another_tenants_collection(client: TestClient) -> None:
    red, blue = key(client, "red"), key(client, "blue")
    ingest(client, red)
    for method, path, body in [
        ("GET", "/v1/collections/handbook", None),
        ("POST", "/v1/collections/handbook/search", {"query": "leave"}),
        ("POST", "/v1/collections/handbook/documents", {"id": "x", "text": "injected"}),
        ("DELETE", "/v1/collections/handbook/documents/leave", None),
        ("DELETE", "/v1/collections/handbook", None),
    ]:
        r = client.request(method, path, json=body, headers=blue)
        assert r.status_code == 404, (method, path, r.text)
    assert client.get("/v1/collections", headers=blue).json()["data"] == []
    # Blue may have its own collection of the same name; it holds blue's documents only.
    assert client.post("/v1/collections", json={"name": "handbook"}, headers=blue).status_code == 201
    r = client.post("/v1/collections/handbook/search", headers=blue, json={"query": "leave"})
    assert r.json()["data"] == []
    assert client.get("/v1/collections/handbook", headers=red).json()["documents"] == 3
    assert client.get("/v1/collections", headers={"authorization": "Bearer th-wrong"}).status_code == 401


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"id": "e", "text": "   "}, "document"),
        (
            {"id": "p", "content_base64": base64.b64encode(b"%PDF-1.4 garbage").decode(), "kind": "pdf"},
            "document",
        ),
        ({"id": "p", "content_base64": base64.b64encode(b"hello").decode(), "kind": "pdf"}, "document"),
        ({"id": "b", "content_base64": "***"}, "content_base64"),
        ({"id": "n"}, "text"),
        ({"id": "h", "text": "x " * 600_000}, "document"),
    ],
)
def test_bad_documents_are_refused_and_nothing_is_written(
    client: TestClient, tmp_path: Path, body: dict[str, Any], param: str
) -> None:
    h = key(client, "red")
    assert client.post("/v1/collections", json={"name": "c"}, headers=h).status_code == 201
    r = client.post("/v1/collections/c/documents", json=body, headers=h)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert client.get("/v1/collections/c", headers=h).json()["documents"] == 0


def test_bad_requests_name_the_problem(client: TestClient) -> None:
    h = key(client, "red")
    assert (
        client.post("/v1/collections", json={"name": "bad name!"}, headers=h).json()["error"]["param"]
        == "name"
    )
    assert client.post("/v1/collections", json={"name": "c"}, headers=h).status_code == 201
    assert client.post("/v1/collections", json={"name": "c"}, headers=h).status_code == 409
    r = client.post("/v1/collections", json={"name": "d", "embedding_model": "nope"}, headers=h)
    assert r.status_code == 400 and r.json()["error"]["param"] == "embedding_model"
    r = client.post("/v1/collections/c/search", json={"query": "x", "k": 0}, headers=h)
    assert r.json()["error"]["param"] == "k"
    r = client.post("/v1/collections/c/search", json={"query": "x", "filters": {"a": [1]}}, headers=h)
    assert r.json()["error"]["param"] == "filters"


def test_changing_the_embedding_model_embeds_every_chunk_again(client: TestClient) -> None:
    h = key(client, "red")
    ingest(client, h)
    r = client.patch("/v1/collections/handbook", json={"embedding_model": "mock"}, headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["embedding_model"], r.json()["chunks"]) == ("mock", 3)
    assert r.json()["dimensions"] != 384  # the mock deployment's vectors
    dense = client.post(
        "/v1/collections/handbook/search", headers=h, json={"query": "leave", "mode": "dense"}
    )
    assert dense.status_code == 200 and len(dense.json()["data"]) == 3  # queries use the new model too
    # A new document is embedded by the new model as well; back to local-embed restores the dimensions.
    r = client.post("/v1/collections/handbook/documents", headers=h, json={"id": "x", "text": "Extra rule."})
    assert r.status_code == 201
    back = client.patch("/v1/collections/handbook", json={"embedding_model": "local-embed"}, headers=h).json()
    assert (back["dimensions"], back["chunks"]) == (384, 4)
    r = client.patch("/v1/collections/handbook", json={"embedding_model": "nope"}, headers=h)
    assert r.status_code == 400 and r.json()["error"]["param"] == "embedding_model"


def test_the_keys_request_rate_applies(client: TestClient) -> None:
    r = client.post(
        "/admin/keys",
        json={"name": "slow", "team": "slow", "rpm": 3},
        headers={"authorization": f"Bearer {ADMIN}"},
    )
    h = {"authorization": f"Bearer {r.json()['key']}"}
    assert client.post("/v1/collections", json={"name": "c"}, headers=h).status_code == 201
    r = client.post("/v1/collections/c/documents", json={"id": "a", "text": DOCS["leave"]}, headers=h)
    assert r.status_code == 201 and r.headers["x-ratelimit-remaining-requests"] == "1"
    assert client.post("/v1/collections/c/search", json={"query": "leave"}, headers=h).status_code == 200
    for method, path, body in (
        ("POST", "/v1/collections/c/search", {"query": "leave"}),
        ("POST", "/v1/collections/c/documents", {"id": "b", "text": DOCS["travel"]}),
    ):
        r = client.request(method, path, json=body, headers=h)
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "rate_limit_exceeded" and int(r.headers["retry-after"]) >= 1
    # Another key (of another team) is not slowed down.
    other = key(client, "fast")
    assert client.get("/v1/collections", headers=other).status_code == 200
    assert client.get("/v1/collections/c/documents", headers=h).status_code == 429
