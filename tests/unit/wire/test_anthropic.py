"""OpenAI ⇄ internal ⇄ Anthropic translation: property tests (hypothesis) that round trips keep tools,
tool-call ids and arguments, images, system prompts, finish reasons and usage, whole and streamed; and the
400s that name what a target cannot do."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollhouse.errors import InvalidRequest
from tollhouse.types import (
    AudioPart,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Choice,
    ChunkChoice,
    Delta,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolSpec,
    Usage,
)
from tollhouse.wire import anthropic as wa
from tollhouse.wire import openai as wo
from tollhouse.wire.anthropic_stream import ChunkReader, EventWriter
from tollhouse.wire.openai_content import tool_from_dict, tool_to_dict

names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
ids = st.from_regex(r"(call|toolu)_[A-Za-z0-9]{1,20}", fullmatch=True)
texts = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != "")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)
arguments = st.dictionaries(names, json_values, max_size=4)
schemas = st.fixed_dictionaries(
    {"type": st.just("object"), "properties": st.dictionaries(names, st.just({"type": "string"}), max_size=3)}
)
tools = st.lists(
    st.builds(ToolSpec, names, st.none() | texts, schemas), min_size=1, max_size=3, unique_by=lambda t: t.name
)
usages = st.builds(
    Usage, st.integers(0, 10**6), st.integers(0, 10**6), st.none() | st.integers(0, 1000)
).filter(lambda u: u.cached_tokens is None or u.cached_tokens <= u.prompt_tokens)
images = st.builds(
    lambda data, kind: ImagePart(url=f"data:image/{kind};base64,{data}"),
    st.from_regex(r"[A-Za-z0-9+/]{4,40}={0,2}", fullmatch=True),
    st.sampled_from(["png", "jpeg", "gif", "webp"]),
)


@st.composite
def conversations(draw: st.DrawFn) -> tuple[list[Message], list[ToolCall]]:
    """system? → user (text + image?) → assistant tool calls → one tool message per call → user."""
    out: list[Message] = []
    if draw(st.booleans()):
        out.append(Message("system", draw(texts)))
    parts: list[Any] = [TextPart(draw(texts))]
    if draw(st.booleans()):
        parts.append(draw(images))
    out.append(Message("user", parts))
    calls = [
        ToolCall(i, draw(names), orjson.dumps(draw(arguments)).decode())
        for i in draw(st.lists(ids, min_size=1, max_size=3, unique=True))
    ]
    out.append(Message("assistant", None, tool_calls=list(calls)))
    for c in calls:
        out.append(Message("tool", draw(texts), tool_call_id=c.id))
    out.append(Message("user", draw(texts)))
    return out, calls


def _via_openai(req: ChatRequest) -> ChatRequest:
    """What an OpenAI client's JSON of ``req`` parses back to."""
    body = wo.chat_request_to_dict(req, req.model, stream=False)
    return ChatRequest(
        model=req.model,
        messages=[wo.message_from_dict(m) for m in body["messages"]],
        max_tokens=body.get("max_tokens"),
        tools=[tool_from_dict(t) for t in body.get("tools") or []] or None,
    )


def _via_anthropic(req: ChatRequest) -> ChatRequest:
    """What an Anthropic client sending ``req``'s Anthropic body would give the gateway."""
    body = wa.request_to_anthropic(req, req.model, 100, stream=False)
    return ChatRequest(
        model=req.model,
        messages=wa.messages_from_anthropic(body),
        max_tokens=body["max_tokens"],
        tools=[wa.tool_from_anthropic(t) for t in body.get("tools") or []] or None,
        tool_choice=wa.tool_choice_from_anthropic(body.get("tool_choice")),
    )


def _calls(req: ChatRequest) -> list[tuple[str, str, Any]]:
    return [
        (c.id, c.name, orjson.loads(c.arguments))
        for m in req.messages
        for c in m.tool_calls or []
        if isinstance(c, ToolCall)
    ]


def _answers(req: ChatRequest) -> list[tuple[str | None, str]]:
    return [(m.tool_call_id, m.text()) for m in req.messages if m.role == "tool"]


def _images(req: ChatRequest) -> list[tuple[str, str] | None]:
    return [
        p.inline()
        for m in req.messages
        if isinstance(m.content, list)
        for p in m.content
        if isinstance(p, ImagePart)
    ]


@settings(max_examples=60, deadline=None)
@given(conversations(), tools, st.sampled_from(["auto", "required", "none"]))
def test_requests_round_trip_openai_internal_anthropic(
    conv: tuple[list[Message], list[ToolCall]], specs: list[ToolSpec], mode: str
) -> None:
    messages, calls = conv
    req = ChatRequest(model="m", messages=messages, max_tokens=100, tools=list(specs))
    req.tool_choice = ToolChoice(mode)  # type: ignore[arg-type]
    back = _via_openai(_via_anthropic(_via_openai(req)))
    assert _calls(back) == [(c.id, c.name, orjson.loads(c.arguments)) for c in calls]
    assert _answers(back) == _answers(req)
    assert _images(back) == _images(req)
    assert [(t.name, t.description, t.parameters) for t in back.tools or [] if isinstance(t, ToolSpec)] == [
        (t.name, t.description, t.parameters) for t in specs
    ]
    assert [m.role for m in back.messages] == [m.role for m in req.messages]
    assert back.messages[0].text() == req.messages[0].text()
    assert _via_anthropic(req).tool_choice == ToolChoice(mode)


@settings(max_examples=100, deadline=None)
@given(usages)
def test_usage_round_trips(u: Usage) -> None:
    via_anthropic = wa.usage_from_anthropic(wa.usage_to_anthropic(u))
    assert (via_anthropic.prompt_tokens, via_anthropic.completion_tokens) == (
        u.prompt_tokens,
        u.completion_tokens,
    )
    assert (via_anthropic.cached_tokens or 0) == (u.cached_tokens or 0)
    assert wo.usage_from_dict(u.to_dict()) == u


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(ids, names, arguments), max_size=3, unique_by=lambda c: c[0]),
    st.none() | texts,
    usages,
)
def test_answers_round_trip_whole_and_streamed(
    raw_calls: list[tuple[str, str, dict[str, Any]]], text: str | None, usage: Usage
) -> None:
    calls: list[ToolCall | Any] = [ToolCall(i, n, orjson.dumps(a).decode()) for i, n, a in raw_calls]
    finish = "tool_calls" if calls else "stop"
    message = Message("assistant", text if text is not None or not calls else None, tool_calls=calls or None)
    resp = ChatResponse("chatcmpl-abc", "m", [Choice(0, message, finish)], usage)
    # whole: internal → Anthropic's message → internal
    back = wa.response_from_anthropic(wa.response_to_anthropic(resp), "m")
    got = back.choices[0]
    assert got.finish_reason == finish
    assert [(c.id, c.name, orjson.loads(c.arguments)) for c in got.message.tool_calls or []] == [
        (i, n, a) for i, n, a in raw_calls
    ]
    assert (got.message.content or "") == (text or "")
    assert (back.usage.prompt_tokens, back.usage.completion_tokens) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    # streamed: internal chunks → Anthropic events → internal chunks
    chunks = [ChatChunk("chatcmpl-abc", "m", [ChunkChoice(0, Delta(role="assistant"))])]
    if text:
        chunks += [ChatChunk("x", "m", [ChunkChoice(0, Delta(content=text[:3]))])]
        chunks += [ChatChunk("x", "m", [ChunkChoice(0, Delta(content=text[3:]))])] if text[3:] else []
    for k, c in enumerate(calls):
        first = ToolCallDelta(k, c.id, "function", c.name, "")
        half = len(c.arguments) // 2
        chunks.append(ChatChunk("x", "m", [ChunkChoice(0, Delta(tool_calls=[first]))]))
        for piece in (c.arguments[:half], c.arguments[half:]):
            delta = ToolCallDelta(k, arguments=piece)
            chunks.append(ChatChunk("x", "m", [ChunkChoice(0, Delta(tool_calls=[delta]))]))
    chunks.append(ChatChunk("x", "m", [ChunkChoice(0, Delta(), finish)]))
    chunks.append(ChatChunk("x", "m", [], usage=usage))
    writer = EventWriter("m")
    events = [e for c in chunks for e in writer.feed(c)] + writer.finish()
    kinds = [k for k, _ in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == len(calls) + bool(text)
    reader = ChunkReader("m")
    out = [c for kind, data in events for c in reader.feed(kind, orjson.loads(orjson.dumps(data)))]
    assert "".join(ch.delta.content or "" for c in out for ch in c.choices) == (text or "")
    args: dict[int, list[str]] = {}
    heads: dict[int, tuple[str | None, str | None]] = {}
    for c in out:
        for ch in c.choices:
            for t in ch.delta.tool_calls or []:
                assert isinstance(t, ToolCallDelta)
                if t.id is not None:
                    heads[t.index] = (t.id, t.name)
                args.setdefault(t.index, []).append(t.arguments or "")
    assert [(*heads[k], orjson.loads("".join(args[k]))) for k in sorted(heads)] == [
        (i, n, a) for i, n, a in raw_calls
    ]
    assert [ch.finish_reason for c in out for ch in c.choices if ch.finish_reason] == [finish]
    assert out[-1].choices == [] and out[-1].usage is not None
    assert (out[-1].usage.prompt_tokens, out[-1].usage.completion_tokens) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )


def test_stop_sequence_and_reasons() -> None:
    d = {
        "id": "msg_1",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "stop_sequence",
        "stop_sequence": "END",
        "usage": {"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 2},
    }
    r = wa.response_from_anthropic(d, "m")
    assert r.choices[0].finish_reason == "stop" and r.usage == Usage(7, 1, 2)
    out = wa.response_to_anthropic(r)
    assert (out["stop_reason"], out["stop_sequence"]) == ("stop_sequence", "END")
    assert out["usage"]["input_tokens"] == 5 and out["usage"]["cache_read_input_tokens"] == 2
    for stop, finish in [("max_tokens", "length"), ("tool_use", "tool_calls"), ("refusal", "content_filter")]:
        assert wa.response_from_anthropic({**d, "stop_reason": stop}, "m").choices[0].finish_reason == finish


def _req(**kw: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message("user", "hi")], **kw)


@pytest.mark.parametrize(
    ("req", "named"),
    [
        (_req(n=2), "n=2"),
        (_req(seed=1), "seed"),
        (_req(extra={"logprobs": True}), "logprobs"),
        (_req(temperature=1.5), "temperature"),
        (ChatRequest("m", [Message("user", [AudioPart("AAAA", "wav")])]), "Audio"),
        (ChatRequest("m", [Message("user", "a"), Message("system", "late")]), "system message"),
        (
            ChatRequest("m", [Message("assistant", None, tool_calls=[ToolCall("c1", "f", "{oops")])]),
            "not valid JSON",
        ),
    ],
)
def test_what_anthropic_cannot_do_is_a_400_naming_it(req: ChatRequest, named: str) -> None:
    with pytest.raises(InvalidRequest, match=named):
        wa.request_to_anthropic(req, "m", 100, stream=False)


def test_anthropic_only_features_are_named_for_other_targets() -> None:
    assert wa.anthropic_only(_req(extra={"top_k": 5})) is None  # vLLM, Ollama, llama.cpp servers take top_k
    refused = wa.anthropic_only(_req(extra={"thinking": {"type": "enabled"}}))
    assert refused is not None and "thinking" in refused.message
    tool = wa.tool_from_anthropic({"type": "web_search_20250305", "name": "web_search"})
    refused = wa.anthropic_only(_req(tools=[tool]))
    assert refused is not None and "web_search_20250305" in refused.message


def test_system_blocks_tool_results_and_openai_tool_shape() -> None:
    body = {
        "system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"a": 1}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_9", "content": "r", "is_error": True},
                    {"type": "text", "text": "and?"},
                ],
            },
        ],
    }
    msgs = wa.messages_from_anthropic(body)
    assert [m.role for m in msgs] == ["system", "user", "assistant", "tool", "user"]
    assert msgs[0].content == "A\nB"
    openai = [wo.message_to_dict(m) for m in msgs]
    assert openai[1]["content"] == [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    assert openai[2]["tool_calls"][0] == {
        "id": "toolu_9",
        "type": "function",
        "function": {"name": "f", "arguments": '{"a":1}'},
    }
    assert openai[3]["tool_call_id"] == "toolu_9"
    system, turns = wa.messages_to_anthropic(msgs)
    assert system == "A\nB"
    assert turns[2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_9",
        "content": "r",
        "is_error": True,
    }
    assert tool_to_dict(wa.tool_from_anthropic({"name": "f", "input_schema": {"type": "object"}})) == {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object"}},
    }


def test_service_tier_is_relayed_only_in_anthropic_terms() -> None:
    body = wa.request_to_anthropic(_req(extra={"service_tier": "auto", "top_k": 3}), "m", 10, stream=True)
    assert (body["service_tier"], body["top_k"], body["stream"]) == ("auto", 3, True)
    assert "service_tier" not in wa.request_to_anthropic(
        _req(extra={"service_tier": "flex"}), "m", 10, stream=False
    )
