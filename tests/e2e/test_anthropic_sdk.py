"""The official ``anthropic`` SDK (sync, async, ``messages.stream``, ``count_tokens``, tools, errors)
against a real Tollhouse server on loopback — on the embedded model, on an OpenAI-compatible upstream
(translated) and on an Anthropic upstream — and the official ``openai`` SDK against the Anthropic upstream
(translated back)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from tests.support.anthropic_upstream import CACHE_READ, TOOL_ID, TOOL_INPUT, start_anthropic_upstream
from tests.support.gateway_server import GatewayProcess, gateway_server
from tests.support.mock_upstream import TOOL_ARGUMENTS, TOOL_CALL_ID, admin, start_mock_upstream, stop

pytestmark = pytest.mark.slow
KEY = "th-test-admin-key"
PNG = "iVBORw0KGgo="
WEATHER: Any = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[str, str]]:
    oai, oai_url = start_mock_upstream()
    ant, ant_url = start_anthropic_upstream()
    try:
        yield oai_url, ant_url
    finally:
        stop(oai)
        stop(ant)


@pytest.fixture(scope="module")
def server(upstreams: tuple[str, str]) -> Iterator[GatewayProcess]:
    oai_url, ant_url = upstreams
    config = {
        "auth": {"admin_key_env": "TH_E2E_KEY"},
        "logging": {"format": "json"},
        "models": [
            {"name": "relay", "provider": "openai", "api_base": oai_url, "model": "up-model"},
            {
                "name": "claude",
                "provider": "anthropic",
                "api_base": ant_url,
                "model": "claude-up",
                "api_key_env": "TH_E2E_ANTHROPIC_KEY",
                "pricing": {"input_per_1m": 3.0, "output_per_1m": 15.0, "cached_input_per_1m": 0.3},
            },
            {"name": "limited", "provider": "mock", "fail_status": 429, "retry_after_s": 1},
        ],
    }
    env = {"TH_E2E_KEY": KEY, "TH_E2E_ANTHROPIC_KEY": "sk-ant-test"}
    with gateway_server(config, env) as gw:
        yield gw


@pytest.fixture
def sdk(server: GatewayProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.root, api_key=KEY, max_retries=0, timeout=60)


@pytest.fixture
def asdk(server: GatewayProcess) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=server.root, auth_token=KEY, max_retries=0, timeout=60)


def test_embedded_model_sync(sdk: anthropic.Anthropic) -> None:
    m = sdk.messages.create(
        model="local",
        max_tokens=24,
        extra_body={"temperature": 0},
        system="You answer briefly.",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    assert m.type == "message" and m.role == "assistant" and m.model == "local"
    assert m.content[0].type == "text" and m.content[0].text.strip()
    assert m.stop_reason in {"end_turn", "max_tokens"}
    assert m.usage.input_tokens > 5 and 0 < m.usage.output_tokens <= 24
    assert m._request_id  # the request-id header


def test_embedded_model_stream(sdk: anthropic.Anthropic) -> None:
    with sdk.messages.stream(
        model="local", max_tokens=30, messages=[{"role": "user", "content": "Count from one to ten."}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 3
    assert final.content[0].text == "".join(pieces)  # type: ignore[union-attr]
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0
    assert final.stop_reason in {"end_turn", "max_tokens"}


def test_async_on_openai_upstream(asdk: anthropic.AsyncAnthropic, upstreams: tuple[str, str]) -> None:
    async def run() -> anthropic.types.Message:
        return await asdk.messages.create(
            model="relay",
            max_tokens=50,
            system="Be nice.",
            stop_sequences=["zzz"],
            extra_body={"top_k": 7},
            metadata={"user_id": "u-42"},
            messages=[{"role": "user", "content": "hi there"}],
        )

    admin(upstreams[0], "/__requests", "DELETE")
    m = asyncio.run(run())
    assert m.content[0].text == "echo: hi there"  # type: ignore[union-attr]
    assert m.stop_reason == "end_turn" and m.model == "relay"
    body = admin(upstreams[0], "/__requests")[-1]["json"]
    assert body["messages"] == [
        {"role": "system", "content": "Be nice."},
        {"role": "user", "content": "hi there"},
    ]
    assert (body["max_tokens"], body["stop"], body["top_k"], body["user"]) == (50, ["zzz"], 7, "u-42")


def test_count_tokens(sdk: anthropic.Anthropic) -> None:
    short = sdk.messages.count_tokens(model="relay", messages=[{"role": "user", "content": "hello"}])
    longer = sdk.messages.count_tokens(
        model="relay",
        system="You are a helpful assistant.",
        messages=[{"role": "user", "content": "hello " * 50}],
    )
    assert 0 < short.input_tokens < longer.input_tokens


def test_count_tokens_on_an_anthropic_upstream_is_its_own_count(
    sdk: anthropic.Anthropic, upstreams: tuple[str, str]
) -> None:
    admin(upstreams[1], "/__requests", "DELETE")
    counted = sdk.messages.count_tokens(
        model="claude", system="Be brief.", messages=[{"role": "user", "content": "one two three"}]
    )
    assert counted.input_tokens == 2 + 3 + 1  # the fake's count: words plus one
    [seen] = admin(upstreams[1], "/__requests")
    assert seen["path"] == "/v1/messages/count_tokens" and seen["json"]["model"] == "claude-up"


def test_tools_and_images_to_openai_upstream(sdk: anthropic.Anthropic, upstreams: tuple[str, str]) -> None:
    """Anthropic SDK → OpenAI-compatible upstream: the tool, the image and the tool_result arrive in OpenAI's
    shape; the upstream's call comes back as a tool_use block with the same id, streamed too."""
    admin(upstreams[0], "/__requests", "DELETE")
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    turn: Any = {"role": "user", "content": [{"type": "text", "text": "mock:tool_call"}, image]}
    m = sdk.messages.create(
        model="relay", max_tokens=50, tools=[WEATHER], tool_choice={"type": "any"}, messages=[turn]
    )
    assert m.stop_reason == "tool_use"
    [call] = [b for b in m.content if b.type == "tool_use"]
    assert (call.id, call.name, call.input) == (TOOL_CALL_ID, "get_weather", json.loads(TOOL_ARGUMENTS))
    with sdk.messages.stream(model="relay", max_tokens=50, tools=[WEATHER], messages=[turn]) as stream:
        final = stream.get_final_message()
    [streamed] = [b for b in final.content if b.type == "tool_use"]
    assert (streamed.id, streamed.input) == (TOOL_CALL_ID, json.loads(TOOL_ARGUMENTS))
    assert final.stop_reason == "tool_use"
    result: Any = {"type": "tool_result", "tool_use_id": call.id, "content": "21 C and sunny"}
    done = sdk.messages.create(
        model="relay",
        max_tokens=50,
        tools=[WEATHER],
        messages=[turn, {"role": "assistant", "content": m.content}, {"role": "user", "content": [result]}],
    )
    assert done.stop_reason == "end_turn"
    first, *_, last = [r["json"] for r in admin(upstreams[0], "/__requests")]
    assert first["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": WEATHER["description"],
                "parameters": WEATHER["input_schema"],
            },
        }
    ]
    assert first["tool_choice"] == "required"
    assert first["messages"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{PNG}"},
    }
    assert last["messages"][1]["tool_calls"][0]["id"] == TOOL_CALL_ID
    assert last["messages"][2] == {"role": "tool", "content": "21 C and sunny", "tool_call_id": TOOL_CALL_ID}


def test_anthropic_upstream_tool_round_trip_streamed(
    sdk: anthropic.Anthropic, server: GatewayProcess
) -> None:
    with sdk.messages.stream(
        model="claude", max_tokens=100, tools=[WEATHER], messages=[{"role": "user", "content": "tool"}]
    ) as stream:
        final = stream.get_final_message()
    [call] = [b for b in final.content if b.type == "tool_use"]
    assert (call.id, call.input) == (TOOL_ID, TOOL_INPUT)
    assert final.stop_reason == "tool_use"
    assert final.usage.cache_read_input_tokens == CACHE_READ
    plain = sdk.messages.with_raw_response.create(
        model="claude", max_tokens=100, messages=[{"role": "user", "content": "hello"}]
    )
    # "hello": input_tokens 2 (words + 1) plus 3 cache reads, 2 output tokens ("echo: hello"); the cache
    # reads at cached_input_per_1m: (2 * 3.0 + 3 * 0.3 + 2 * 15.0) / 1e6
    assert float(plain.headers["x-tollhouse-cost-usd"]) == pytest.approx(36.9e-6)
    usage = plain.parse().usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (2, CACHE_READ, 2)
    assert plain.parse().content[0].text == "echo: hello"  # type: ignore[union-attr]


def test_openai_sdk_to_anthropic_upstream(server: GatewayProcess, upstreams: tuple[str, str]) -> None:
    """OpenAI SDK → Anthropic upstream: tools, image and the tool result go out in Anthropic's shape; the
    tool_use comes back as an OpenAI tool call with the same id; usage counts the cache reads."""
    client = openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, timeout=60)
    admin(upstreams[1], "/__requests", "DELETE")
    tool: Any = {
        "type": "function",
        "function": {"name": "get_weather", "parameters": WEATHER["input_schema"]},
    }
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    msgs: Any = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "tool"}, image]},
    ]
    r = client.chat.completions.create(model="claude", messages=msgs, tools=[tool], max_tokens=100)
    assert r.choices[0].finish_reason == "tool_calls"
    [call] = r.choices[0].message.tool_calls or []
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        TOOL_ID,
        "get_weather",
        TOOL_INPUT,
    )
    assert r.usage is not None and r.usage.prompt_tokens_details is not None
    assert r.usage.prompt_tokens_details.cached_tokens == CACHE_READ
    chunks = list(
        client.chat.completions.create(
            model="claude", messages=msgs, tools=[tool], max_tokens=100, stream=True
        )
    )
    args = "".join(
        t.function.arguments or ""
        for c in chunks
        if c.choices
        for t in c.choices[0].delta.tool_calls or []
        if t.function
    )
    assert json.loads(args) == TOOL_INPUT
    msgs += [
        r.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "21 C"},
    ]
    done = client.chat.completions.create(model="claude", messages=msgs, tools=[tool], max_tokens=100)
    assert done.choices[0].message.content == "echo: tool done"
    first, *_, last = [r["json"] for r in admin(upstreams[1], "/__requests")]
    assert first["system"] == "Be terse."
    assert first["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    assert first["tools"] == [{"name": "get_weather", "input_schema": WEATHER["input_schema"]}]
    assert last["messages"][-1]["content"] == [
        {"type": "tool_result", "tool_use_id": TOOL_ID, "content": "21 C"}
    ]
    with pytest.raises(openai.BadRequestError, match="seed"):
        client.chat.completions.create(model="claude", messages=msgs, seed=3, max_tokens=10)


def test_errors_are_the_sdks_exception_classes(sdk: anthropic.Anthropic, server: GatewayProcess) -> None:
    bad = anthropic.Anthropic(base_url=server.root, api_key="th-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as auth:
        bad.messages.create(model="relay", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.RateLimitError) as limited:
        sdk.messages.create(model="limited", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert limited.value.response.headers["retry-after"] == "1"
    with pytest.raises(anthropic.BadRequestError, match="thinking"):
        sdk.messages.create(
            model="relay",
            max_tokens=2000,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": "x"}],
        )
    with pytest.raises(anthropic.BadRequestError) as missing:
        sdk.post("/v1/messages", body={"model": "relay", "messages": []}, cast_to=object)
    assert "max_tokens" in missing.value.message or "messages" in missing.value.message
    assert missing.value.request_id
