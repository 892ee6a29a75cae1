"""The ``anthropic`` provider against a real loopback fake of Anthropic's API (``tests.support.
anthropic_upstream``): what the generic provider contract cannot ask of every provider — the request body and
headers Anthropic expects, tool use whole and streamed with its ids, images as base64 sources, prompt-cache
usage, and every failure mapped onto the error tree (retry-after included)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest
from tests.support.anthropic_upstream import CACHE_READ, TOOL_ID, TOOL_INPUT, start_anthropic_upstream
from tests.support.mock_upstream import admin, stop

from tollhouse.errors import (
    InvalidRequest,
    UpstreamBadRequest,
    UpstreamContextWindowExceeded,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from tollhouse.providers.anthropic import AnthropicProvider
from tollhouse.settings import AnthropicModel
from tollhouse.types import (
    ChatRequest,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolSpec,
)

KEY_ENV = "TH_CONTRACT_ANTHROPIC_KEY"


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    proc, url = start_anthropic_upstream()
    try:
        yield url
    finally:
        stop(proc)


@pytest.fixture
async def provider(base: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AnthropicProvider]:
    monkeypatch.setenv(KEY_ENV, "sk-ant-test")
    p = AnthropicProvider(
        AnthropicModel(
            name="claude", model="claude-up", api_base=base, api_key_env=KEY_ENV, max_output_tokens=300
        )
    )
    yield p
    await p.aclose()


async def requests(base: str) -> list[dict[str, object]]:
    return list(await asyncio.to_thread(admin, base, "/__requests"))


WEATHER = ToolSpec(
    "get_weather", "Weather in a city", {"type": "object", "properties": {"city": {"type": "string"}}}
)


async def test_body_and_headers(provider: AnthropicProvider, base: str) -> None:
    await asyncio.to_thread(admin, base, "/__requests", "DELETE")
    image = ImagePart(url="data:image/png;base64,iVBORw0KGgo=")
    req = ChatRequest(
        "claude",
        [Message("system", "Be terse."), Message("user", [TextPart("look"), image])],
        temperature=0.2,
        stop=["END"],
        user="u-1",
        extra={"top_k": 5},
    )
    resp = await provider.complete(req)
    assert resp.choices[0].message.content == "echo: look"
    [seen] = await requests(base)
    headers, body = seen["headers"], seen["json"]
    assert isinstance(headers, dict) and isinstance(body, dict)
    assert headers["x-api-key"] == "sk-ant-test" and headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    assert body == {
        "model": "claude-up",
        "system": "Be terse.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                    },
                ],
            }
        ],
        "max_tokens": 300,  # the deployment's cap: Anthropic requires max_tokens
        "stop_sequences": ["END"],
        "temperature": 0.2,
        "top_k": 5,
        "metadata": {"user_id": "u-1"},
    }


async def test_prompt_cache_reads_are_cached_tokens(provider: AnthropicProvider) -> None:
    resp = await provider.complete(ChatRequest("claude", [Message("user", "one two")]))
    assert resp.usage.cached_tokens == CACHE_READ
    assert resp.usage.prompt_tokens == 3 + CACHE_READ  # input_tokens (words + 1) plus the cache reads


async def test_tool_use_round_trip(provider: AnthropicProvider, base: str) -> None:
    req = ChatRequest(
        "claude", [Message("user", "tool")], tools=[WEATHER], tool_choice=ToolChoice("required")
    )
    resp = await provider.complete(req)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert isinstance(call, ToolCall)
    assert (call.id, call.name, orjson.loads(call.arguments)) == (TOOL_ID, "get_weather", TOOL_INPUT)
    # streamed: the same call in fragments, id and name first
    chunks = [c async for c in provider.stream(req)]
    deltas = [t for c in chunks for ch in c.choices for t in ch.delta.tool_calls or []]
    assert all(isinstance(t, ToolCallDelta) for t in deltas)
    assert (deltas[0].id, deltas[0].name) == (TOOL_ID, "get_weather")  # type: ignore[union-attr]
    assert orjson.loads("".join(t.arguments or "" for t in deltas)) == TOOL_INPUT  # type: ignore[union-attr]
    assert [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason] == ["tool_calls"]
    # the answer goes back as a tool_result with the same id
    await asyncio.to_thread(admin, base, "/__requests", "DELETE")
    follow = ChatRequest(
        "claude",
        [*req.messages, choice.message, Message("tool", "21 C", tool_call_id=TOOL_ID)],
        tools=[WEATHER],
    )
    done = await provider.complete(follow)
    assert done.choices[0].finish_reason == "stop"
    body = (await requests(base))[0]["json"]
    assert isinstance(body, dict)
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": TOOL_ID, "name": "get_weather", "input": TOOL_INPUT}
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": TOOL_ID, "content": "21 C"}
    ]
    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather in a city", "input_schema": WEATHER.parameters}
    ]


async def test_stop_sequence_is_kept(provider: AnthropicProvider) -> None:
    resp = await provider.complete(ChatRequest("claude", [Message("user", "stop:END")], stop=["END"]))
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.choices[0].message.extra or {}).get("stop_sequence") == "END"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, UpstreamRateLimited),
        (400, UpstreamBadRequest),
        (529, UpstreamUnavailable),
        (500, UpstreamUnavailable),
        (401, UpstreamError),
    ],
)
async def test_errors_map_onto_the_tree(
    provider: AnthropicProvider, status: int, error: type[Exception]
) -> None:
    req = ChatRequest("claude", [Message("user", f"status:{status}")])
    with pytest.raises(error) as caught:
        await provider.complete(req)
    with pytest.raises(error):
        _ = [c async for c in provider.stream(req)]
    if status == 429:
        assert caught.value.retry_after == 2.0  # type: ignore[attr-defined]
    if status == 401:
        assert KEY_ENV in str(caught.value) and "sk-ant-test" not in str(caught.value)


async def test_prompt_too_long_is_context_exceeded(provider: AnthropicProvider) -> None:
    with pytest.raises(UpstreamContextWindowExceeded, match="prompt is too long"):
        await provider.complete(ChatRequest("claude", [Message("user", "context")]))


async def test_error_event_mid_stream(provider: AnthropicProvider) -> None:
    seen: list[str] = []

    async def read() -> None:
        async for c in provider.stream(ChatRequest("claude", [Message("user", "error_in_stream")])):
            seen.extend(ch.delta.content or "" for ch in c.choices)

    with pytest.raises(UpstreamUnavailable, match="Overloaded"):
        await read()
    assert "".join(seen) == "echo:"  # the text before the error event was relayed


async def test_what_anthropic_cannot_do_is_refused_before_the_call(provider: AnthropicProvider) -> None:
    with pytest.raises(InvalidRequest, match="n=3"):
        await provider.complete(ChatRequest("claude", [Message("user", "hi")], n=3))
