"""The official ``openai`` SDK against a real Tollhouse server: vendor extras (``extra_body``) reaching a
real HTTP upstream only where the deployment allows them, and structured output, tool calls and text-only
refusals on the embedded model (real generation; small ``max_tokens``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import openai
import pytest
from tests.support.gateway_server import GatewayProcess, gateway_server
from tests.support.mock_upstream import admin, start_mock_upstream, stop

pytestmark = pytest.mark.slow
KEY = "th-test-admin-key"
VENDOR = {"top_k": 20, "repetition_penalty": 1.05, "chat_template_kwargs": {"enable_thinking": False}}
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 24}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 24}},
                "required": ["city"],
            },
        },
    }
]


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    proc, base = start_mock_upstream()
    try:
        yield base
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def server(upstream: str) -> Iterator[GatewayProcess]:
    config = {
        "auth": {"admin_key_env": "TH_E2E_KEY"},
        "logging": {"format": "json"},
        "embedded": {"chat": False, "embeddings": False},
        "models": [
            {"name": "vllm", "provider": "openai", "api_base": upstream, "extra_params": list(VENDOR)},
            {"name": "plain", "provider": "openai", "api_base": upstream},
            {
                "name": "local",
                "provider": "llamacpp",
                "n_ctx": 1024,
                "context_window": 1024,
                "max_output_tokens": 128,
                "extra_params": ["top_k", "min_p"],
            },
        ],
    }
    with gateway_server(config, {"TH_E2E_KEY": KEY}) as gw:
        yield gw


@pytest.fixture
def sdk(server: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, timeout=60)


def _bodies(upstream: str) -> list[dict[str, Any]]:
    return [r["json"] for r in admin(upstream, "/__requests") if r["path"].startswith("/v1/")]


def test_extra_body_reaches_an_upstream_that_allows_it_and_no_other(
    sdk: openai.OpenAI, upstream: str, server: GatewayProcess
) -> None:
    admin(upstream, "/__requests", "DELETE")
    msgs: Any = [{"role": "user", "content": "hi there"}]
    extra = {**VENDOR, "mirostat_secret_knob": 7}
    r = sdk.chat.completions.create(model="vllm", messages=msgs, extra_body=extra)
    assert r.choices[0].message.content == "echo: hi there"
    list(sdk.chat.completions.create(model="vllm", messages=msgs, extra_body=extra, stream=True))
    sdk.completions.create(model="vllm", prompt="hi", extra_body=extra)
    sdk.chat.completions.create(model="plain", messages=msgs, extra_body=extra)
    *allowed, refused = _bodies(upstream)
    assert len(allowed) == 3
    for body in allowed:
        assert {k: body[k] for k in VENDOR} == VENDOR
        assert "mirostat_secret_knob" not in body
    assert not set(extra) & set(refused)
    deadline = time.monotonic() + 5
    while "dropped request fields" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [json.loads(x) for x in server.log().splitlines() if x.startswith("{")]
    dropped = [
        x
        for x in lines
        if x.get("message", x.get("msg")) == "dropped request fields the deployment does not allow"
    ]
    assert dropped, "no log line for the dropped fields"


def test_json_schema_on_the_embedded_model_is_schema_valid_streamed_too(sdk: openai.OpenAI) -> None:
    rf: Any = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
    msgs: Any = [{"role": "user", "content": "Invent a person with a name and an age."}]
    r = sdk.chat.completions.create(model="local", messages=msgs, response_format=rf, max_tokens=48)
    jsonschema.validate(json.loads(r.choices[0].message.content or ""), PERSON)
    stream = sdk.chat.completions.create(
        model="local", messages=msgs, response_format=rf, max_tokens=48, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    jsonschema.validate(json.loads(text), PERSON)


def test_json_object_on_the_embedded_model(sdk: openai.OpenAI) -> None:
    r = sdk.chat.completions.create(
        model="local",
        messages=[{"role": "user", "content": "Give a person's name and age."}],
        response_format={"type": "json_object"},
        max_tokens=60,
        temperature=0,
        extra_body={"top_k": 40, "min_p": 0.05},
    )
    # The grammar makes every token fit JSON; only max_tokens can cut it (finish_reason "length").
    assert r.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(r.choices[0].message.content or ""), dict)


def test_tool_round_trip_on_the_embedded_model(sdk: openai.OpenAI) -> None:
    msgs: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = sdk.chat.completions.create(
        model="local", messages=msgs, tools=TOOLS, tool_choice="required", max_tokens=48
    )
    assert r.choices[0].finish_reason == "tool_calls"
    [call] = r.choices[0].message.tool_calls or []
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather" and json.loads(call.function.arguments)["city"]

    stream = sdk.chat.completions.create(
        model="local",
        messages=msgs,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=48,
        stream=True,
    )
    chunks = [c for c in stream if c.choices]
    pieces = [t for c in chunks for t in c.choices[0].delta.tool_calls or []]
    assert pieces and pieces[0].id and pieces[0].id.startswith("call_") and pieces[0].id != call.id
    assert pieces[0].function is not None and pieces[0].function.name == "get_weather"
    assert json.loads("".join(t.function.arguments or "" for t in pieces if t.function))["city"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    answer = [*msgs, r.choices[0].message, {"role": "tool", "tool_call_id": call.id, "content": "18C, sunny"}]
    final = sdk.chat.completions.create(
        model="local", messages=answer, tools=TOOLS, tool_choice="none", max_tokens=16
    )
    assert final.choices[0].message.content and not final.choices[0].message.tool_calls


def test_images_and_bad_extras_are_400s_naming_the_problem(sdk: openai.OpenAI) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    msgs: Any = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}]
    with pytest.raises(openai.BadRequestError) as err:
        sdk.chat.completions.create(model="local", messages=msgs, max_tokens=8)
    assert "vision" in err.value.message
    assert isinstance(err.value.body, dict) and err.value.body.get("param") == "messages.0.content.1"
    with pytest.raises(openai.BadRequestError) as err:
        sdk.chat.completions.create(
            model="local", messages=[{"role": "user", "content": "hi"}], extra_body={"top_k": "many"}
        )
    assert "top_k" in err.value.message
