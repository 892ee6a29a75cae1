"""``POST /v1/moderations``: OpenAI's schema, string and array input, clear 400s, the key's auth and limits,
and a ledger record per request (in-process app, the shipped classifier)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.conftest import assert_openai_shape
from tests.unit.api.test_access import ADMIN, access_settings, admin

from tollhouse.app import create_app
from tollhouse.guardrails.moderator import CATEGORIES

URL = "/v1/moderations"


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TH_TEST_ADMIN", ADMIN)
    with TestClient(create_app(access_settings(tmp_path)), raise_server_exceptions=False) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_string_and_array_input_match_openai_schema(client: TestClient) -> None:
    key = admin(client, "POST", "/admin/keys", {"name": "mod"})["key"]
    r = client.post(URL, json={"input": "What a lovely morning for a walk."}, headers=auth(key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert_openai_shape("CreateModerationResponse", body)
    assert body["id"].startswith("modr-") and body["model"] == "tollhouse-moderation"
    (only,) = body["results"]
    assert set(only["categories"]) == set(CATEGORIES) == set(only["category_scores"])
    assert only["flagged"] is False and not any(only["categories"].values())
    texts = [
        "Thanks for the recipe, it was delicious.",
        "Here is how to kill yourself: the best way to hurt yourself is",
        {"type": "text", "text": "See you at the meeting on Tuesday."},
    ]
    r = client.post(URL, json={"model": "omni-moderation-latest", "input": texts}, headers=auth(key))
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["flagged"] for x in results] == [False, True, False]
    assert results[1]["categories"]["self-harm"] is True
    assert all(0.0 <= s <= 1.0 for x in results for s in x["category_scores"].values())


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({}, "input"),
        ({"input": []}, "empty"),
        ({"input": 5}, "string"),
        ({"input": ["ok", 3]}, "strings"),
        ({"input": [{"type": "image_url", "image_url": {"url": "x"}}]}, "text parts"),
        ({"input": ["x"] * 33}, "at most 32"),
        ({"input": "x" * 32_001}, "too long"),
    ],
)
def test_bad_input_is_a_clear_400(client: TestClient, body: dict[str, object], word: str) -> None:
    key = admin(client, "POST", "/admin/keys", {"name": "mod"})["key"]
    r = client.post(URL, json=body, headers=auth(key))
    assert r.status_code == 400, r.text
    assert word in r.json()["error"]["message"]


def test_needs_a_key_and_obeys_its_rate_limit(client: TestClient) -> None:
    assert client.post(URL, json={"input": "hello"}).status_code == 401
    key = admin(client, "POST", "/admin/keys", {"rpm": 2})["key"]
    codes = [client.post(URL, json={"input": "hello"}, headers=auth(key)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_a_key_limited_to_other_models_may_not_moderate(client: TestClient) -> None:
    key = admin(client, "POST", "/admin/keys", {"models": ["priced"]})["key"]
    assert client.post(URL, json={"input": "hello"}, headers=auth(key)).status_code == 403
    key = admin(client, "POST", "/admin/keys", {"models": ["priced", "tollhouse-moderation"]})["key"]
    assert client.post(URL, json={"input": "hello"}, headers=auth(key)).status_code == 200


def test_every_call_is_one_ledger_record_at_no_cost(client: TestClient) -> None:
    key = admin(client, "POST", "/admin/keys", {"rpm": 2})["key"]
    for _ in range(3):  # two answered, one refused by the rate limit
        client.post(URL, json={"input": ["hello", "there"]}, headers=auth(key))
    deadline = time.monotonic() + 5
    while True:
        rows = admin(client, "GET", "/admin/usage?group_by=model")
        if rows["totals"]["requests"] >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    (row,) = [r for r in rows["data"] if r["model"] == "tollhouse-moderation"]
    assert row["requests"] == 3 and row["errors"] == 1 and row["cost_usd"] == 0
