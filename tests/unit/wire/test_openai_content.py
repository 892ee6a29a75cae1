"""OpenAI JSON ⇄ content parts, tools, tool calls, tool choice and response formats: the typed form of each
documented shape, ``extra`` for unknown keys, ``Raw`` for what the types cannot hold, exact round trips."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tests.support.openai_corpus import CHUNKS, REQUESTS, RESPONSES

from tollhouse.types import (
    AudioPart,
    FilePart,
    ImagePart,
    Message,
    Raw,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolSpec,
)
from tollhouse.wire import openai as wire
from tollhouse.wire.openai_content import (
    content_from_dict,
    part_from_dict,
    part_to_dict,
    response_format_from_dict,
    response_format_to_dict,
    tool_call_delta_from_dict,
    tool_call_delta_to_dict,
    tool_call_from_dict,
    tool_call_to_dict,
    tool_choice_from_dict,
    tool_choice_to_dict,
    tool_from_dict,
    tool_to_dict,
)


def test_parts_of_every_kind_become_typed() -> None:
    assert part_from_dict({"type": "text", "text": "hi"}) == TextPart("hi")
    assert part_from_dict(
        {"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "low"}}
    ) == (ImagePart(url="https://x/a.png", detail="low"))
    assert part_from_dict({"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}) == (
        AudioPart("AA==", "wav")
    )
    assert part_from_dict({"type": "file", "file": {"file_id": "f-1"}}) == FilePart(file_id="f-1")
    assert part_from_dict({"type": "file", "file": {"file_data": "data:x", "filename": "a.pdf"}}) == (
        FilePart(data="data:x", filename="a.pdf")
    )
    assert part_from_dict({"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}) == (
        TextPart("hi", {"cache_control": {"type": "ephemeral"}})
    )


@pytest.mark.parametrize(
    "part",
    [
        {"type": "future", "future": {"a": 1}},  # unknown type
        {"type": "image_url", "image_url": "https://x/a.png"},  # not an object
        {"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": None}},  # explicit null
        {"type": "image_url", "image_url": {"url": "https://x/a.png", "vendor": 1}},  # nested unknown key
        {"type": "image_url", "image_url": {"detail": "low"}},  # no url
        {"type": "input_audio", "input_audio": {"data": "AA=="}},  # no format
        {"type": "text", "text": 5},
    ],
)
def test_what_the_types_cannot_hold_is_kept_whole(part: dict[str, Any]) -> None:
    parsed = part_from_dict(part)
    assert parsed == Raw(part)
    assert part_to_dict(parsed) is part


def test_raw_type() -> None:
    assert Raw({"type": "custom"}).type == "custom"
    assert Raw({"type": 3}).type is None and Raw("something").type is None


def test_image_inline_data() -> None:
    assert ImagePart(url="data:image/png;base64,iVBO").inline() == ("image/png", "iVBO")
    assert ImagePart(url="https://x/a.png").inline() is None
    assert ImagePart(url="data:image/png,plain").inline() is None  # not base64
    assert ImagePart(data="iVBO", media_type="image/png").inline() == ("image/png", "iVBO")
    # An image given as data (another ingress) goes to OpenAI as a data URL.
    assert part_to_dict(ImagePart(data="iVBO", media_type="image/png", detail="high")) == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBO", "detail": "high"},
    }


def test_message_text_joins_text_parts_only() -> None:
    parts = [
        TextPart("one"),
        ImagePart(url="https://x/a.png"),
        Raw({"type": "text", "text": 7}),  # an odd text part still counts
        Raw({"type": "refusal", "refusal": "no"}),
        TextPart("two"),
    ]
    assert Message("user", parts).text() == "one\n7\ntwo"
    assert Message("user", "plain").text() == "plain" and Message("assistant").text() == ""


def test_tools() -> None:
    spec = {
        "type": "function",
        "function": {"name": "f", "description": "d", "parameters": {"type": "object"}, "strict": True},
    }
    assert tool_from_dict(spec) == ToolSpec("f", "d", {"type": "object"}, True)
    assert tool_from_dict({"type": "function", "function": {"name": "g"}}) == ToolSpec("g")
    with_extra = {"type": "function", "function": {"name": "g"}, "cache_control": {"type": "ephemeral"}}
    assert tool_from_dict(with_extra) == ToolSpec("g", extra={"cache_control": {"type": "ephemeral"}})
    custom = {"type": "custom", "custom": {"name": "grammar"}}
    assert tool_from_dict(custom) == Raw(custom)
    for d in (spec, with_extra, custom):
        assert tool_to_dict(tool_from_dict(d)) == d


def test_tool_choice() -> None:
    assert tool_choice_from_dict("auto") == ToolChoice("auto")
    assert tool_choice_from_dict("required") is tool_choice_from_dict("required")  # shared, not rebuilt
    named = {"type": "function", "function": {"name": "f"}}
    assert tool_choice_from_dict(named) == ToolChoice("tool", "f")
    assert tool_choice_from_dict("sometimes") == Raw("sometimes")
    assert tool_choice_from_dict(None) is None
    for v in ("auto", "none", "required", named, "sometimes", {"type": "allowed_tools"}):
        parsed = tool_choice_from_dict(v)
        assert parsed is not None and tool_choice_to_dict(parsed) == v


def test_response_formats() -> None:
    assert response_format_from_dict({"type": "json_object"}) == ResponseFormat("json_object")
    schema = {
        "type": "json_schema",
        "json_schema": {"name": "a", "schema": {"type": "object"}, "strict": True},
    }
    assert response_format_from_dict(schema) == ResponseFormat(
        "json_schema", name="a", schema={"type": "object"}, strict=True
    )
    for d in ({"type": "text"}, schema, {"type": "grammar", "grammar": "x"}, {"type": "json_schema"}):
        parsed = response_format_from_dict(d)
        assert parsed is not None and response_format_to_dict(parsed) == d
    assert isinstance(response_format_from_dict({"type": "json_schema"}), Raw)  # no json_schema object


def test_tool_calls_whole_and_streamed() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    assert tool_call_from_dict(call) == ToolCall("c1", "f", '{"a": 1}')
    assert tool_call_to_dict(tool_call_from_dict(call)) == call
    no_id = {"type": "function", "function": {"name": "f", "arguments": "{}"}}
    assert tool_call_from_dict(no_id) == Raw(no_id)
    first = {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
    more = {"index": 0, "function": {"arguments": '{"a"'}}
    assert tool_call_delta_from_dict(first) == ToolCallDelta(0, "c1", "function", "f", "")
    assert tool_call_delta_from_dict(more) == ToolCallDelta(0, arguments='{"a"')
    nulls = {"index": 0, "id": None, "function": {"arguments": "x"}}  # explicit nulls: kept whole
    assert tool_call_delta_from_dict(nulls) == Raw(nulls)
    for d in (first, more, nulls, {"id": "no-index"}):
        assert tool_call_delta_to_dict(tool_call_delta_from_dict(d)) == d


def test_key_order_of_the_client_does_not_matter() -> None:
    """Rendered JSON puts modelled keys in OpenAI's order; a body the client ordered otherwise parses to the
    same value (cache keys sort keys, so they do not change either)."""
    part = {"text": "hi", "type": "text"}
    assert orjson.loads(orjson.dumps(part_to_dict(part_from_dict(part)))) == part


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_corpus_requests_round_trip(name: str) -> None:
    for m in REQUESTS[name]["messages"]:
        if isinstance(m.get("content"), list):
            parsed = content_from_dict(m["content"])
            assert isinstance(parsed, list) and [part_to_dict(p) for p in parsed] == m["content"]


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_corpus_messages_round_trip(name: str) -> None:
    for c in RESPONSES[name]["choices"]:
        m = wire.message_from_dict(c["message"])
        assert wire.message_to_dict(m)["content"] == c["message"]["content"]
        calls = c["message"].get("tool_calls")
        if calls is not None:
            assert m.tool_calls is not None and [tool_call_to_dict(t) for t in m.tool_calls] == calls


@pytest.mark.parametrize("name", sorted(CHUNKS))
def test_corpus_deltas_round_trip(name: str) -> None:
    for c in CHUNKS[name]["choices"]:
        calls = c["delta"].get("tool_calls")
        if calls is not None:
            assert [tool_call_delta_to_dict(tool_call_delta_from_dict(t)) for t in calls] == calls
