"""The semantic cache through the HTTP API, with the real embedded encoder: a paraphrase in the same scope
is a ``semantic-hit``; a look-alike that means something else, another tenant, another system prompt, a
request with tools, a multi-turn conversation or a hot temperature is not; shadow mode serves upstream."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.support.cache_app import admin, chat, new_key

pytestmark = pytest.mark.slow

Q = "Is it safe to eat raw eggs?"


@pytest.fixture
def sem(make: Any) -> TestClient:
    client: TestClient = make({"mode": "semantic", "semantic": {"backend": "memory"}})
    return client


def test_a_paraphrase_is_a_semantic_hit_with_its_similarity(sem: TestClient) -> None:
    k = new_key(sem)
    first = chat(sem, k, Q, model="echo")
    assert first.headers["x-tollhouse-cache"] == "miss"
    r = chat(sem, k, "Is it safe to eat eggs raw?", model="echo")
    assert r.headers["x-tollhouse-cache"] == "semantic-hit", r.headers
    assert 0.95 <= float(r.headers["x-tollhouse-cache-similarity"]) <= 1.0
    assert r.json()["choices"] == first.json()["choices"]  # the stored answer, not a new echo
    stats = admin(sem, "GET", "/v1/cache/stats")["process"]
    assert stats["semantic_hits"] == 1 and stats["semantic_entries"] == 1


def test_look_alikes_and_other_contexts_miss(sem: TestClient) -> None:
    k, other = new_key(sem), new_key(sem)
    chat(sem, k, Q, model="echo")
    assert (
        chat(sem, k, "Is it not safe to eat raw eggs?", model="echo").headers["x-tollhouse-cache"] == "miss"
    )
    assert (
        chat(sem, other, "Is it safe to eat eggs raw?", model="echo").headers["x-tollhouse-cache"] == "miss"
    )
    system = [{"role": "system", "content": "Answer as a pirate."}, {"role": "user", "content": Q}]
    body = {"model": "echo", "messages": system}
    r = sem.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {k}"})
    assert r.headers["x-tollhouse-cache"] == "miss"
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    r = chat(sem, k, "Is it safe to eat eggs raw?", model="echo", tools=tools)
    assert r.headers["x-tollhouse-cache"] == "miss"
    hot = chat(sem, k, "Is it safe to eat eggs raw?", model="echo", temperature=1.5)
    assert hot.headers["x-tollhouse-cache"] == "skip"  # sampling hotter than semantic.max_temperature
    turns = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "Is it safe to eat eggs raw?"},
    ]
    r = sem.post(
        "/v1/chat/completions",
        json={"model": "echo", "messages": turns},
        headers={"authorization": f"Bearer {k}"},
    )
    assert r.headers["x-tollhouse-cache"] == "miss"


def test_shadow_mode_logs_the_would_be_hit_and_serves_upstream(
    make: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    c = make({"mode": "semantic", "semantic": {"shadow": True}})
    k = new_key(c)
    chat(c, k, Q, model="echo")
    with caplog.at_level(logging.INFO, logger="tollhouse.cache"):
        r = chat(c, k, "Is it safe to eat eggs raw?", model="echo")
    assert r.headers["x-tollhouse-cache"] == "miss"
    assert r.json()["choices"][0]["message"]["content"] == "echo: Is it safe to eat eggs raw?"
    assert any("shadow hit" in rec.getMessage() for rec in caplog.records)
    assert admin(c, "GET", "/v1/cache/stats")["process"]["shadow_hits"] == 1
