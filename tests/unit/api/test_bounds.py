"""Bounds at the boundary (issue 12, defects 6 and 8): every number the OpenAI routes take is checked
against the range OpenAI's spec documents (or a sane bound where it documents none), types are strict
where OpenAI's are, and a value that would once have broken the exact cache key or an upstream request is
a 400 naming the field, never a 500."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import assert_openai_shape, mock_settings

from tollhouse.app import create_app

CHAT = "/v1/chat/completions"
MSGS = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def cached() -> Iterator[TestClient]:
    """Mock models with the exact cache on (the default a deployment gets); ``json`` answers JSON."""
    settings = mock_settings(json={"reply": '{"a": 1}'}).model_copy(deep=True)
    settings.cache.mode = "exact"
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def chat(c: TestClient, **kw: Any) -> Any:
    return c.post(CHAT, json={"model": "mock", "messages": MSGS, **kw})


def refused(r: Any, param: str) -> None:
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert (err["type"], err["param"]) == ("invalid_request_error", param), err
    assert param in err["message"]
    assert_openai_shape("ErrorResponse", r.json())


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"seed": 2**70}, "seed"),  # was a 500: "Integer exceeds 64-bit range" in the exact cache key
        ({"seed": -(2**63) - 1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": "0.5"}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"n": 0}, "n"),
        ({"n": 129}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 5.0}, "max_tokens"),
        ({"max_completion_tokens": "5"}, "max_completion_tokens"),
        ({"presence_penalty": 2.5}, "presence_penalty"),
        ({"frequency_penalty": -3}, "frequency_penalty"),
        ({"logit_bias": {"the": 5}}, "logit_bias.the"),
        ({"logit_bias": {"50256": -101}}, "logit_bias.50256"),
        ({"logit_bias": {"-1": 1}}, "logit_bias.-1"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"logprobs": "yes"}, "logprobs"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stream": "yes"}, "stream"),
        ({"stream": 1}, "stream"),
        ({"stream": True, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
        ({"parallel_tool_calls": "no"}, "parallel_tool_calls"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"metadata": {"k": "v" * 513}}, "metadata.k"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"tools": [{"type": "function"}]}, "tools.0.function"),
        ({"tools": [{"type": "function", "function": {"description": "d"}}]}, "tools.0.function.name"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": "none"}}]},
            "tools.0.function.parameters",
        ),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {}}}, "tool_choice.function.name"),
        ({"functions": [{"description": "no name"}]}, "functions.0.name"),
        ({"function_call": "always"}, "function_call"),
        ({"prediction": {"type": "content", "content": "x", "n": 2**70}}, "prediction.n"),
        ({"some_future_param": {"deep": [1, 2**64]}}, "some_future_param.deep.1"),
    ],
)
def test_chat_numbers_and_shapes_out_of_bounds_are_400_naming_the_field(
    cached: TestClient, fields: dict[str, Any], param: str
) -> None:
    refused(chat(cached, **fields), param)


@pytest.mark.parametrize(
    ("content", "param"),
    [
        ([{"type": "image_url"}], "messages.0.content.0.image_url"),
        ([{"type": "image_url", "image_url": {}}], "messages.0.content.0.image_url.url"),
        (
            [{"type": "image_url", "image_url": {"url": "https://e.com/a.png", "detail": "max"}}],
            "messages.0.content.0.image_url.detail",
        ),
        (
            [{"type": "input_audio", "input_audio": {"data": "AA=="}}],
            "messages.0.content.0.input_audio.format",
        ),
        ([{"type": "file", "file": {"file_id": 7}}], "messages.0.content.0.file.file_id"),
        ([{"text": "no type"}], "messages.0.content.0.type"),
        ([{"type": "text", "text": "x", "weight": 2**70}], "messages.0.content.0.weight"),
    ],
)
def test_content_parts_carry_what_openai_requires(cached: TestClient, content: Any, param: str) -> None:
    r = cached.post(CHAT, json={"model": "mock", "messages": [{"role": "user", "content": content}]})
    refused(r, param)


def test_a_wide_integer_in_an_unknown_message_field_is_a_400(cached: TestClient) -> None:
    msgs = [{"role": "user", "content": "hi", "weird": {"a": [1, 2**70]}}]
    refused(cached.post(CHAT, json={"model": "mock", "messages": msgs}), "messages.0.weird.a.1")


def test_seeds_at_the_int64_bounds_are_served_and_cached(cached: TestClient) -> None:
    for seed in (2**63 - 1, -(2**63)):
        first = chat(cached, seed=seed)
        assert first.status_code == 200, first.text
        assert first.headers["x-tollhouse-cache"] == "miss"
        again = chat(cached, seed=seed)
        assert again.status_code == 200 and again.headers["x-tollhouse-cache"] == "hit"


def test_accepted_edges_and_unknown_kinds_still_pass(cached: TestClient) -> None:
    ok = [
        {"temperature": 2, "top_p": 0, "presence_penalty": -2, "frequency_penalty": 2},
        {"logit_bias": {"50256": -100, "0": 100}, "logprobs": True, "top_logprobs": 20},
        {"stream": None},
        {"tools": [{"type": "custom", "custom": {"name": "grammar"}}], "tool_choice": "auto"},
        {"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}},
        {"max_completion_tokens": 256},
    ]
    for fields in ok:
        r = chat(cached, **fields)
        assert r.status_code == 200, (fields, r.text)
    rf = {"type": "json_schema", "json_schema": {"name": "a_b-1", "schema": {"type": "object"}}}
    r = cached.post(CHAT, json={"model": "json", "messages": MSGS, "response_format": rf})
    assert r.status_code == 200, r.text
    parts = [{"type": "future_part", "future_part": {"a": 1}}, {"type": "file", "file": {}}]
    r = cached.post(CHAT, json={"model": "mock", "messages": [{"role": "user", "content": parts}]})
    assert r.status_code == 200, r.text


def test_n_is_bounded_by_the_deployment() -> None:
    with TestClient(create_app(mock_settings(wide={"max_n": 16}))) as c:
        r = c.post(CHAT, json={"model": "mock", "messages": MSGS, "n": 9})
        refused(r, "n")
        assert "at most 8" in r.json()["error"]["message"]
        r = c.post(CHAT, json={"model": "wide", "messages": MSGS, "n": 9})
        assert r.status_code == 200, r.text
        refused(c.post(CHAT, json={"model": "wide", "messages": MSGS, "n": 17}), "n")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"best_of": 21}, "best_of"),
        ({"logprobs": 6}, "logprobs"),
        ({"echo": "yes"}, "echo"),
        ({"seed": 2**64}, "seed"),
        ({"stream": "true"}, "stream"),
    ],
)
def test_completions_bounds(cached: TestClient, fields: dict[str, Any], param: str) -> None:
    refused(cached.post("/v1/completions", json={"model": "mock", "prompt": "say", **fields}), param)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": "a", "dimensions": 10_000_000}, "dimensions"),
        ({"input": "a", "dimensions": 4097}, "dimensions"),
        ({"input": "a", "dimensions": 0}, "dimensions"),
        ({"input": ""}, "input"),
        ({"input": ["a", ""]}, "input.1"),
        ({"input": ["x"] * 2049}, "input"),
        ({"input": [-1, 2]}, "input.0"),
        ({"input": [[1, 2], [3, 2**40]]}, "input.1.1"),
        ({"input": [[]]}, "input.0"),
        ({"input": ["a", 1]}, "input.1"),
    ],
)
def test_embedding_bounds(cached: TestClient, fields: dict[str, Any], param: str) -> None:
    t0 = time.perf_counter()
    refused(cached.post("/v1/embeddings", json={"model": "mock", **fields}), param)
    assert time.perf_counter() - t0 < 2  # refused at once, not after building a huge vector


def test_embedding_dimensions_within_bounds_are_served(cached: TestClient) -> None:
    r = cached.post("/v1/embeddings", json={"model": "mock", "input": ["a", "b"], "dimensions": 4096})
    assert r.status_code == 200 and len(r.json()["data"][1]["embedding"]) == 4096
    r = cached.post("/v1/embeddings", json={"model": "mock", "input": [[1, 2], [3]]})
    assert r.status_code == 200 and len(r.json()["data"]) == 2
