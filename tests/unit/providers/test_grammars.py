"""Grammars for the embedded model: which grammar each response format and tool choice gets, the 400s for
what cannot be honoured, and reading a constrained answer back as a tool call (no model needed)."""

from __future__ import annotations

import json

import pytest
from llama_cpp.llama_grammar import JSON_GBNF

from tollhouse.errors import InvalidRequest
from tollhouse.providers.grammars import (
    message_text,
    parse_call,
    response_grammar,
    tool_plan,
    with_tools,
)
from tollhouse.types import Message, Raw, ResponseFormat, ToolCall, ToolChoice, ToolSpec

WEATHER = ToolSpec(
    "get_weather",
    "Current weather",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = ToolSpec("get_time", None, {"type": "object", "properties": {"zone": {"type": "string"}}})


def test_response_formats_map_to_grammars() -> None:
    assert response_grammar(None) is None
    assert response_grammar(ResponseFormat("text")) is None
    assert response_grammar(ResponseFormat("json_object")) == JSON_GBNF
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    grammar = response_grammar(ResponseFormat("json_schema", name="p", schema=schema))
    assert grammar is not None and '"\\"age\\""' in grammar and grammar != JSON_GBNF
    # A json_schema without a schema, or in a shape the vocabulary keeps raw, still gets JSON.
    assert response_grammar(ResponseFormat("json_schema", name="p")) == JSON_GBNF
    raw = Raw({"type": "json_schema", "json_schema": {"name": "p", "schema": schema}, "x": 1})
    assert response_grammar(raw) == grammar


def test_schema_strings_exclude_raw_control_characters() -> None:
    """JSON strings cannot hold a raw newline: the grammar must not let the model write one."""
    grammar = response_grammar(ResponseFormat("json_schema", name="p", schema={"type": "string"}))
    assert grammar is not None
    [char] = [line for line in grammar.splitlines() if line.startswith("char ::=")]
    assert char.startswith(r'char ::= [^"\\\x7F\x00-\x1F] |')


def test_a_schema_the_converter_cannot_express_falls_back_to_any_json_object() -> None:
    schema = {"$ref": "https://example.invalid/schema.json"}
    assert response_grammar(ResponseFormat("json_schema", name="p", schema=schema)) == JSON_GBNF


def test_forced_and_optional_tool_calls() -> None:
    assert tool_plan(None, None) is None
    assert tool_plan([WEATHER], ToolChoice("none")) is None
    forced = tool_plan([WEATHER, TIME], ToolChoice("required"))
    assert forced is not None and forced.forced
    assert '"\\"get_weather\\""' in forced.grammar and '"\\"get_time\\""' in forced.grammar
    named = tool_plan([WEATHER, TIME], ToolChoice("tool", "get_time"))
    assert named is not None and "get_weather" not in named.grammar and "get_time" in named.note
    auto = tool_plan([WEATHER], None)
    assert auto is not None and not auto.forced
    assert "root ::= call | prose" in auto.grammar and "plain text" in auto.note


@pytest.mark.parametrize(
    ("tools", "choice", "param"),
    [
        ([WEATHER], ToolChoice("tool", "nope"), "tool_choice"),
        ([WEATHER], Raw({"type": "allowed_tools"}), "tool_choice"),
        ([WEATHER, Raw({"type": "custom", "custom": {"name": "x"}})], None, "tools.1"),
        ([ToolSpec("f", parameters={"$ref": "https://example.invalid/s.json"})], None, "tools"),
    ],
)
def test_what_cannot_be_honoured_is_a_400_naming_it(tools: list, choice: object, param: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        tool_plan(tools, choice)  # type: ignore[arg-type]
    assert err.value.param == param


def test_a_constrained_answer_reads_back_as_a_call_with_a_fresh_id() -> None:
    text = '{ "name": "get_weather", "arguments": {"city": "Paris"} }'
    first, second = parse_call(text), parse_call(text)
    assert first is not None and second is not None
    assert (first.name, json.loads(first.arguments)) == ("get_weather", {"city": "Paris"})
    assert first.id.startswith("call_") and first.id != second.id
    assert parse_call("Paris is sunny.") is None
    assert parse_call('{ "name": "get_weather", "argu') is None  # cut short by max_tokens


def test_tools_note_goes_into_the_system_message_and_calls_stay_visible() -> None:
    msgs = [{"role": "user", "content": "hi"}]
    assert with_tools(msgs, "NOTE") == [{"role": "system", "content": "NOTE"}, *msgs]
    sys = [{"role": "system", "content": "Be brief."}, *msgs]
    assert with_tools(sys, "NOTE")[0] == {"role": "system", "content": "Be brief.\n\nNOTE"}
    earlier = Message("assistant", None, tool_calls=[ToolCall("call_1", "get_weather", '{"city": "Rome"}')])
    assert json.loads(message_text(earlier)) == {"name": "get_weather", "arguments": {"city": "Rome"}}
