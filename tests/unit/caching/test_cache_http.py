"""The exact cache through the HTTP API: hits and misses, controls, tenant isolation, streams, accounting.

Upstream calls are observed through scripted faults: the mock's second call fails with a 400, so a 200 on
a repeat proves it was served from the cache, and a 400 proves it reached the provider.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.support.cache_app import ADMIN, admin, chat, new_key


def test_repeat_is_a_hit_that_costs_nothing_and_records_what_it_saved(make: Any) -> None:
    c = make()
    k = new_key(c)
    first = chat(c, k)
    assert first.status_code == 200 and first.headers["x-tollhouse-cache"] == "miss"
    assert float(first.headers["x-tollhouse-cost-usd"]) > 0
    again = chat(c, k, "hello   there ")  # whitespace-normalised: the same request
    assert again.status_code == 200, again.text  # the upstream would have failed this one
    assert again.headers["x-tollhouse-cache"] == "hit"
    assert float(again.headers["x-tollhouse-cost-usd"]) == 0
    saved = float(again.headers["x-tollhouse-cache-saved-usd"])
    assert saved == pytest.approx(float(first.headers["x-tollhouse-cost-usd"]))
    a, b = first.json(), again.json()
    assert b["choices"] == a["choices"] and b["usage"] == a["usage"]
    assert b["id"] != a["id"]
    time.sleep(0.3)  # ledger flush
    stats = admin(c, "GET", "/v1/cache/stats")
    assert stats["hits"] == 1 and stats["misses"] == 1 and stats["hit_rate"] == 0.5
    assert stats["saved_usd"] == pytest.approx(saved)
    assert stats["entries"] == 1
    costs = admin(c, "GET", "/v1/costs")
    assert costs["cache_hits"] == 1 and costs["cache_saved_usd"] == pytest.approx(saved)


def test_other_parameters_and_other_keys_miss(make: Any) -> None:
    c = make()
    k1, k2 = new_key(c), new_key(c)
    assert chat(c, k1).status_code == 200
    # Every call below reaches the provider (a miss), which fails every second call: alternate.
    assert chat(c, k2).status_code == 400  # another tenant: no hit
    assert chat(c, k1, seed=3).headers["x-tollhouse-cache"] == "miss"
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    r = chat(c, k1, tools=tools)
    assert r.status_code == 400 and r.headers.get("x-tollhouse-cache") == "miss"


def test_team_scope_shares_within_a_team_only(make: Any) -> None:
    c = make({"scope": "team"})
    a1, a2 = new_key(c, team="a"), new_key(c, team="a")
    b1 = new_key(c, team="b")
    assert chat(c, a1).status_code == 200
    assert chat(c, a2).headers["x-tollhouse-cache"] == "hit"
    assert chat(c, b1).status_code == 400


def test_no_cache_skips_lookup_but_stores_and_no_store_does_neither(make: Any) -> None:
    c = make()
    k = new_key(c)
    r = chat(c, k, "a", model="echo", headers={"cache-control": "no-store"})
    assert r.headers["x-tollhouse-cache"] == "skip"
    assert chat(c, k, "a", model="echo").headers["x-tollhouse-cache"] == "miss"  # nothing was stored
    r = chat(c, k, "b", model="echo", headers={"cache-control": "no-cache"})
    assert r.headers["x-tollhouse-cache"] == "skip"
    assert chat(c, k, "b", model="echo").headers["x-tollhouse-cache"] == "hit"  # ...but it was stored
    r = chat(c, k, "b", model="echo", cache={"no_cache": True})  # the body field means the same
    assert r.headers["x-tollhouse-cache"] == "skip"


def test_ttl_from_header_and_body(make: Any) -> None:
    c = make()
    k = new_key(c)
    chat(c, k, "t1", model="echo", headers={"x-tollhouse-cache-ttl": "0.2"})
    chat(c, k, "t2", model="echo", cache={"ttl": 0.2})
    assert chat(c, k, "t1", model="echo").headers["x-tollhouse-cache"] == "hit"
    time.sleep(0.3)
    assert chat(c, k, "t1", model="echo").headers["x-tollhouse-cache"] == "miss"
    assert chat(c, k, "t2", model="echo").headers["x-tollhouse-cache"] == "miss"


@pytest.mark.parametrize(
    ("headers", "body", "param"),
    [
        ({"x-tollhouse-cache-ttl": "soon"}, {}, "x-tollhouse-cache-ttl"),
        ({"x-tollhouse-cache-ttl": "-1"}, {}, "x-tollhouse-cache-ttl"),
        ({}, {"cache": {"ttl": "x"}}, "cache.ttl"),
        ({}, {"cache": {"no_cache": "yes"}}, "cache.no_cache"),
        ({}, {"cache": {"nocache": True}}, "cache"),
        ({}, {"cache": "off"}, "cache"),
    ],
)
def test_bad_directives_are_a_400_naming_the_field(
    make: Any, headers: dict[str, str], body: dict[str, Any], param: str
) -> None:
    c = make()
    r = chat(c, new_key(c), model="echo", headers=headers, **body)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == param


def test_truncated_and_failed_answers_are_not_stored(make: Any) -> None:
    c = make()
    k = new_key(c)
    r = chat(c, k, model="short", max_tokens=2)
    assert r.json()["choices"][0]["finish_reason"] == "length"
    assert chat(c, k, model="short", max_tokens=2).headers["x-tollhouse-cache"] == "miss"
    chat(c, k, "x")  # ok
    assert chat(c, k, "y").status_code == 400  # an error: not stored
    assert chat(c, k, "y").status_code == 200  # so this one went upstream again
    assert admin(c, "GET", "/v1/cache/stats")["entries"] == 2


def test_pii_in_the_input_bypasses_the_cache(make: Any) -> None:
    c = make(guardrails={"input": [{"rule": "pii", "mode": "redact"}]})
    k = new_key(c)
    r = chat(c, k, "mail bob@example.com please", model="echo")
    assert r.status_code == 200 and r.headers["x-tollhouse-cache"] == "skip"
    assert chat(c, k, "mail bob@example.com please", model="echo").headers["x-tollhouse-cache"] == "skip"


def sse(r: Any) -> list[dict[str, Any]]:
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [orjson.loads(e) for e in events[:-1]]


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])


def test_stream_replay_equals_the_original_and_a_streamed_miss_is_stored(make: Any) -> None:
    c = make()
    k = new_key(c)
    opts = {"stream": True, "stream_options": {"include_usage": True}}
    live = chat(c, k, "tell me a story about caching", model="once", **opts)
    assert live.headers["x-tollhouse-cache"] == "miss"
    live_events = sse(live)
    replayed = chat(c, k, "tell me a story about caching", model="once", **opts)
    assert replayed.status_code == 200 and replayed.headers["x-tollhouse-cache"] == "hit"
    assert replayed.headers["content-type"].startswith("text/event-stream")
    events = sse(replayed)
    assert len(events) > 2
    assert text_of(events) == text_of(live_events)
    assert events[-1]["usage"] == live_events[-1]["usage"]
    finish = [e["choices"][0]["finish_reason"] for e in events if e["choices"]]
    assert finish[-1] == "stop"
    # ...and the JSON form of the same request is a hit on the stored stream.
    j = chat(c, k, "tell me a story about caching", model="once")
    assert j.headers["x-tollhouse-cache"] == "hit"
    assert j.json()["choices"][0]["message"]["content"] == text_of(live_events)


def test_per_model_policies(make: Any) -> None:
    overrides = [{"models": ["echo"], "mode": "off"}, {"models": ["short"], "access": "read_only"}]
    c = make({"overrides": overrides})
    k = new_key(c)
    chat(c, k, model="echo")
    assert chat(c, k, model="echo").headers["x-tollhouse-cache"] == "skip"
    chat(c, k, model="short")
    assert chat(c, k, model="short").headers["x-tollhouse-cache"] == "miss"  # read-only: never stored
    assert chat(c, k).headers["x-tollhouse-cache"] == "miss"
    assert chat(c, k).headers["x-tollhouse-cache"] == "hit"


def test_write_only_never_serves(make: Any) -> None:
    c = make({"access": "write_only"})
    k = new_key(c)
    chat(c, k, model="echo")
    assert chat(c, k, model="echo").headers["x-tollhouse-cache"] == "skip"
    assert admin(c, "GET", "/v1/cache/stats")["entries"] == 1


def test_admin_invalidation(make: Any) -> None:
    c = make()
    k1 = new_key(c)
    k2 = new_key(c)
    key_id = admin(c, "GET", "/admin/keys")["data"][0]["id"]
    for k in (k1, k2):
        chat(c, k, "q", model="echo")
        chat(c, k, "q", model="short")
    assert admin(c, "GET", "/v1/cache/stats")["entries"] == 4
    assert admin(c, "POST", "/admin/cache/invalidate", {"model": "short"})["removed"] == 2
    assert admin(c, "POST", "/admin/cache/invalidate", {"key_id": key_id})["removed"] == 1
    assert admin(c, "POST", "/admin/cache/invalidate", {"all": True})["removed"] == 1
    r = c.post("/admin/cache/invalidate", json={}, headers={"authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 400 and "all" in r.json()["error"]["message"]
    r = c.post("/admin/cache/invalidate", json={"all": True}, headers={"authorization": f"Bearer {k1}"})
    assert r.status_code == 401


def test_sqlite_backend_survives_a_restart(make: Any, tmp_path: Path) -> None:
    cfg = {"backend": "sqlite", "sqlite_path": str(tmp_path / "cache.db")}
    c = make(cfg)
    k = new_key(c)
    assert chat(c, k).status_code == 200
    c.__exit__(None, None, None)
    c2 = make(cfg)
    assert chat(c2, k).headers["x-tollhouse-cache"] == "hit"


def test_emergency_mode_serves_repeats_from_the_cache(make: Any) -> None:
    c = make(emergency={"daily_spend_usd": 0.000001, "model": "echo", "check_interval_s": 0.05})
    k = new_key(c)
    first = chat(c, k, "an expensive question")
    assert first.status_code == 200 and "x-tollhouse-route" not in first.headers
    time.sleep(0.3)  # the day's spend is over the threshold: emergency mode is on
    other = chat(c, k, "a new question")
    assert other.headers["x-tollhouse-route"].startswith("emergency-downgrade:echo")
    assert other.json()["choices"][0]["message"]["content"] == "echo: a new question"
    repeat = chat(c, k, "an expensive question")
    assert repeat.status_code == 200
    assert repeat.headers["x-tollhouse-cache"] == "hit"  # the original model's answer, at no cost
    assert repeat.json()["choices"] == first.json()["choices"]
