"""Safer cache defaults (issue 12, defect 9): only requests whose answer is meant to repeat (temperature 0
or a seed) are cached unless a key, model or request opts in, and a served answer never repeats the tool-call
ids of the one it was stored from.

The ``once`` mock answers its first call and refuses every second one with a 400: a 200 on a repeat proves
it was served from the cache, a 400 proves it reached the provider."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from tests.support.cache_app import admin, chat, new_key
from tests.support.mock_upstream import TOOL_CALL_ID, start_mock_upstream, stop

from tollhouse.types import ChatResponse, Choice, Message, Raw, ToolCall, Usage

SAMPLED = {"temperature": None}  # the helper's default is temperature 0; this sends none (OpenAI's 1)


def test_a_request_that_samples_is_neither_served_nor_stored_by_default(make: Any) -> None:
    c = make()
    k = new_key(c)
    for temperature in (None, 0.7):
        first = chat(c, k, f"a poem at {temperature}", temperature=temperature)
        assert first.status_code == 200 and first.headers["x-tollhouse-cache"] == "skip"
        again = chat(c, k, f"a poem at {temperature}", temperature=temperature)
        assert again.status_code == 400  # it reached the provider: a sampling caller gets a fresh answer
    assert admin(c, "GET", "/v1/cache/stats")["entries"] == 0


@pytest.mark.parametrize("fields", [{"temperature": 0}, {"seed": 42}, {"seed": 42, "temperature": 0.9}])
def test_repeatable_requests_are_cached(make: Any, fields: dict[str, Any]) -> None:
    c = make()
    k = new_key(c)
    assert chat(c, k, **fields).headers["x-tollhouse-cache"] == "miss"
    assert chat(c, k, **fields).headers["x-tollhouse-cache"] == "hit"


def test_opt_in_per_gateway_model_and_request(make: Any) -> None:
    everywhere = make({"sampled": True})
    k = new_key(everywhere)
    chat(everywhere, k, **SAMPLED)
    assert chat(everywhere, k, **SAMPLED).headers["x-tollhouse-cache"] == "hit"

    per_model = make({"overrides": [{"models": ["echo"], "sampled": True}]})
    k = new_key(per_model)
    chat(per_model, k, model="echo", **SAMPLED)
    assert chat(per_model, k, model="echo", **SAMPLED).headers["x-tollhouse-cache"] == "hit"
    assert chat(per_model, k, **SAMPLED).headers["x-tollhouse-cache"] == "skip"  # another model

    per_request = make()
    k = new_key(per_request)
    opt_in = {"cache": {"sampled": True}, **SAMPLED}
    assert chat(per_request, k, "q", model="echo", **opt_in).headers["x-tollhouse-cache"] == "miss"
    assert chat(per_request, k, "q", model="echo", **opt_in).headers["x-tollhouse-cache"] == "hit"
    assert chat(per_request, k, "q", model="echo", **SAMPLED).headers["x-tollhouse-cache"] == "skip"
    r = chat(per_request, k, "q", model="echo", cache={"sampled": "yes"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "cache.sampled"


def test_an_override_can_turn_sampled_caching_off_again(make: Any) -> None:
    c = make({"sampled": True, "overrides": [{"models": ["once"], "sampled": False}]})
    k = new_key(c)
    chat(c, k, **SAMPLED)
    assert chat(c, k, **SAMPLED).status_code == 400


# ---- tool-call ids --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    proc, base = start_mock_upstream()
    try:
        yield base
    finally:
        stop(proc)


def _call_ids(events: list[dict[str, Any]]) -> list[str]:
    return [
        tc["id"]
        for e in events
        for ch in e["choices"]
        for tc in ch["delta"].get("tool_calls") or []
        if tc.get("id")
    ]


def test_a_cached_tool_call_gets_fresh_ids_on_every_hit(make: Any, upstream: str) -> None:
    model = {"name": "up", "provider": "openai", "api_base": upstream}
    c = make(models=[model], embedded={"chat": False, "embeddings": False})
    k = new_key(c)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    body = {"model": "up", "tools": tools, "temperature": 0}
    first = chat(c, k, "mock:tool_call", **body)
    assert first.status_code == 200, first.text
    assert first.headers["x-tollhouse-cache"] == "miss"
    assert first.json()["choices"][0]["message"]["tool_calls"][0]["id"] == TOOL_CALL_ID
    seen = {TOOL_CALL_ID}
    for _ in range(2):
        hit = chat(c, k, "mock:tool_call", **body)
        assert hit.headers["x-tollhouse-cache"] == "hit"
        (call,) = hit.json()["choices"][0]["message"]["tool_calls"]
        assert call["id"].startswith("call_") and call["id"] not in seen
        assert call["function"] == first.json()["choices"][0]["message"]["tool_calls"][0]["function"]
        seen.add(call["id"])
    replay = chat(c, k, "mock:tool_call", stream=True, **body)
    assert replay.headers["x-tollhouse-cache"] == "hit"
    events = [orjson.loads(line[6:]) for line in replay.text.splitlines() if line.startswith("data: {")]
    (streamed,) = _call_ids(events)
    assert streamed not in seen


def test_fresh_ids_are_consistent_within_one_answer() -> None:
    from tollhouse.caching.entry import fresh_tool_call_ids

    def answer() -> ChatResponse:
        calls: list[ToolCall | Raw] = [
            ToolCall("call_a", "f", "{}"),
            Raw({"id": "call_b", "type": "custom", "custom": {"name": "g", "input": "x"}}),
        ]
        again: list[ToolCall | Raw] = [ToolCall("call_a", "f", "{}"), ToolCall("call_c", "h", "{}")]
        return ChatResponse(
            "id",
            "m",
            [
                Choice(0, Message("assistant", None, tool_calls=calls), "tool_calls"),
                Choice(1, Message("assistant", None, tool_calls=again), "tool_calls"),
            ],
            Usage(1, 1),
        )

    out = fresh_tool_call_ids(answer())
    first, second = (c.message.tool_calls or [] for c in out.choices)
    a1, b, a2, c = (x.id if isinstance(x, ToolCall) else x.value["id"] for x in [*first, *second])
    assert a1 == a2 and len({a1, b, c}) == 3 and not {a1, b, c} & {"call_a", "call_b", "call_c"}
    assert isinstance(first[1], Raw) and first[1].value["custom"] == {"name": "g", "input": "x"}
    assert fresh_tool_call_ids(answer()).choices[0].message.tool_calls != first  # new ones every time
