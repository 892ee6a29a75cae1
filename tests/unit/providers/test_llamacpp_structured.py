"""Structured output, tool calls, vendor extras and text-only refusals on the real embedded model
(SmolLM2-135M, loaded once for the module; small ``max_tokens`` keep it quick)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import jsonschema  # type: ignore[import-untyped]
import pytest

from tollhouse.errors import InvalidRequest
from tollhouse.providers.llamacpp import LlamaCppProvider
from tollhouse.settings import ConfigError, LlamaCppModel, load_settings
from tollhouse.types import (
    AudioPart,
    ChatRequest,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    ToolCallDelta,
    ToolChoice,
    ToolSpec,
)

pytestmark = pytest.mark.slow

CITY = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 24}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
WEATHER = ToolSpec(
    "get_weather",
    "Current weather in a city",
    {"type": "object", "properties": {"city": {"type": "string", "maxLength": 24}}, "required": ["city"]},
)


@pytest.fixture(scope="module")
def provider() -> Iterator[LlamaCppProvider]:
    cfg = LlamaCppModel(
        name="local",
        context_window=1024,
        max_output_tokens=96,
        n_ctx=1024,
        extra_params=["top_k", "repetition_penalty", "min_p"],
    )
    p = LlamaCppProvider(cfg)
    yield p
    asyncio.run(p.aclose())


def chat(text: str | list, **kw: object) -> ChatRequest:
    return ChatRequest(model="local", messages=[Message("user", text)], **kw)  # type: ignore[arg-type]


def test_declares_tools_and_json_schema_but_not_images(provider: LlamaCppProvider) -> None:
    caps = provider.capabilities
    assert caps.tools and caps.json_schema and not caps.vision and not caps.audio


@pytest.mark.parametrize(("temperature", "seed"), [(0.0, None), (1.0, 1), (1.0, 2), (1.0, 3), (1.0, 4)])
async def test_json_schema_answers_are_schema_valid(
    provider: LlamaCppProvider, temperature: float, seed: int | None
) -> None:
    """Sampled answers too: every character of every string must be one JSON allows (no raw newline)."""
    rf = ResponseFormat("json_schema", name="city", schema=CITY)
    prompt = "Name a big city and its population."
    resp = await provider.complete(
        chat(prompt, response_format=rf, max_tokens=60, temperature=temperature, seed=seed)
    )
    assert resp.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(resp.choices[0].message.text()), CITY)


async def test_json_object_is_enforced_streamed_too(provider: LlamaCppProvider) -> None:
    req = chat("Describe a cat.", response_format=ResponseFormat("json_object"), max_tokens=60, seed=3)
    chunks = [c async for c in provider.stream(req)]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    assert isinstance(json.loads(text), dict)


@pytest.mark.parametrize("choice", [ToolChoice("required"), ToolChoice("tool", "get_weather")])
async def test_a_forced_tool_call_comes_back_in_openai_shape(
    provider: LlamaCppProvider, choice: ToolChoice
) -> None:
    other = ToolSpec("get_time", "Current time", {"type": "object", "properties": {}})
    req = chat("What is the weather in Paris?", tools=[WEATHER, other], tool_choice=choice, max_tokens=48)
    first, second = await provider.complete(req), await provider.complete(req)
    assert first.choices[0].finish_reason == "tool_calls"
    assert first.choices[0].message.content is None
    [call] = first.choices[0].message.tool_calls or []
    [again] = second.choices[0].message.tool_calls or []
    assert not isinstance(call, ToolCallDelta) and not isinstance(again, ToolCallDelta)
    assert call.id.startswith("call_") and call.id != again.id  # type: ignore[union-attr]
    if choice.mode == "tool":
        assert call.name == "get_weather"  # type: ignore[union-attr]
    if call.name == "get_weather":  # type: ignore[union-attr]
        jsonschema.validate(json.loads(call.arguments), WEATHER.parameters)  # type: ignore[union-attr]


async def test_a_streamed_tool_call_is_one_delta_then_finish_tool_calls(provider: LlamaCppProvider) -> None:
    req = chat("Weather in Rome?", tools=[WEATHER], tool_choice=ToolChoice("required"), max_tokens=48)
    chunks = [c async for c in provider.stream(req)]
    deltas = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
    assert len(deltas) == 1 and isinstance(deltas[0], ToolCallDelta)
    assert deltas[0].id and deltas[0].id.startswith("call_") and deltas[0].name == "get_weather"
    assert json.loads(deltas[0].arguments or "")["city"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


async def test_auto_may_answer_in_text_and_streams_it(provider: LlamaCppProvider) -> None:
    req = chat("Say hello.", tools=[WEATHER], max_tokens=8, temperature=0)
    chunks = [c async for c in provider.stream(req)]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
    # Either outcome is valid for auto; whichever it is must be well formed.
    assert (text and not text.startswith("{") and not calls) or (len(calls) == 1 and not text)


async def test_a_call_cut_short_by_max_tokens_is_text_with_length(provider: LlamaCppProvider) -> None:
    req = chat("Weather in Oslo?", tools=[WEATHER], tool_choice=ToolChoice("required"), max_tokens=3)
    resp = await provider.complete(req)
    assert resp.choices[0].finish_reason == "length"
    assert resp.choices[0].message.tool_calls is None and resp.choices[0].message.text().startswith("{")


async def test_tool_results_go_back_to_the_model(provider: LlamaCppProvider) -> None:
    first = await provider.complete(
        chat("Weather in Paris?", tools=[WEATHER], tool_choice=ToolChoice("required"), max_tokens=48)
    )
    call = first.choices[0].message
    [tc] = call.tool_calls or []
    follow = ChatRequest(
        model="local",
        messages=[
            Message("user", "Weather in Paris?"),
            call,
            Message("tool", "18C, sunny", tool_call_id=tc.id),
        ],  # type: ignore[union-attr]
        tools=[WEATHER],
        tool_choice=ToolChoice("none"),
        max_tokens=16,
    )
    answer = await provider.complete(follow)
    assert answer.choices[0].message.tool_calls is None and answer.choices[0].message.text()


@pytest.mark.parametrize(
    ("part", "capability"),
    [(ImagePart(url="data:image/png;base64,iVBORw0KGgo="), "vision"), (AudioPart("AAAA", "wav"), "audio")],
)
async def test_non_text_parts_are_a_400_naming_the_capability(
    provider: LlamaCppProvider, part: object, capability: str
) -> None:
    with pytest.raises(InvalidRequest) as err:
        await provider.complete(chat([TextPart("What is this?"), part]))
    assert err.value.param == "messages.0.content.1"
    assert capability in str(err.value)


async def test_legacy_functions_are_a_400_pointing_to_tools(provider: LlamaCppProvider) -> None:
    with pytest.raises(InvalidRequest) as err:
        await provider.complete(chat("Hi", extra={"functions": [{"name": "f", "parameters": {}}]}))
    assert err.value.param == "functions" and "tools" in str(err.value)


async def test_top_k_one_reaches_llama_cpp_and_makes_sampling_greedy(provider: LlamaCppProvider) -> None:
    """At temperature 2 different seeds diverge at once; with top_k 1 only the likeliest token is left."""
    base = {"max_tokens": 12, "temperature": 2.0}
    greedy = [
        (await provider.complete(chat("Tell me a story.", seed=s, vendor={"top_k": 1}, **base))).choices[0]
        for s in (1, 2, 3)
    ]
    assert len({c.message.text() for c in greedy}) == 1
    wild = [(await provider.complete(chat("Tell me a story.", seed=s, **base))).choices[0] for s in (1, 2, 3)]
    assert len({c.message.text() for c in wild}) > 1


async def test_vendor_values_are_checked_and_unlisted_ones_dropped(
    provider: LlamaCppProvider, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(InvalidRequest) as err:
        await provider.complete(chat("Hi", vendor={"top_k": "five"}))
    assert err.value.param == "top_k"
    with pytest.raises(InvalidRequest) as err:
        await provider.complete(chat("Hi", vendor={"min_p": 3}))
    assert err.value.param == "min_p"
    with caplog.at_level(logging.INFO, logger="tollhouse.providers"):
        resp = await provider.complete(
            chat("Hi", vendor={"repetition_penalty": 1.2, "mirostat_mode": 2}, max_tokens=4)
        )
    assert resp.choices[0].message.text()
    [rec] = [r for r in caplog.records if r.getMessage().startswith("dropped request fields")]
    assert rec.fields == ["mirostat_mode"]


def test_extra_params_the_embedded_model_cannot_honour_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="chat_template_kwargs"):
        load_settings(
            models=[{"name": "x", "provider": "llamacpp", "extra_params": ["chat_template_kwargs"]}]
        )
    with pytest.raises(ConfigError, match="set by the gateway"):
        load_settings(
            models=[{"name": "y", "provider": "openai", "api_base": "http://h/v1", "extra_params": ["model"]}]
        )
