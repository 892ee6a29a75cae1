"""Structured output on the embedded model: llama.cpp grammars (GBNF) that constrain sampling, so the
answer is JSON (``json_object``), JSON valid against a schema (``json_schema``), or a tool call.

Tool calls: the model sees the tools in a system note and, under a grammar, writes one JSON object
``{"name": …, "arguments": {…}}`` whose ``arguments`` follow that tool's parameter schema. ``required`` and a
named tool force the call; ``auto`` lets the answer be either that object or plain text that does not
start with ``{``. The call is returned in OpenAI's shape with a fresh ``call_…`` id.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from tollhouse.errors import InvalidRequest
from tollhouse.types import Message, Raw, ResponseFormat, ToolCall, ToolChoice, ToolSpec

_log = logging.getLogger(__name__)
# ``auto``: the answer is a call, or prose whose first character is not ``{`` (nor blank, so the choice
# is made on the first token).
_PROSE = "root ::= call | prose\nprose ::= [^{ \\t\\n] [^\\x00]*\n"


@dataclass(slots=True, frozen=True)
class ToolPlan:
    """How the embedded model answers a request with tools: the grammar, the system note that shows it
    the tools, and whether a call is forced (``required`` or a named tool) or optional (``auto``)."""

    grammar: str
    note: str
    forced: bool


# llama-cpp-python's converter lets string characters be raw control characters (a newline inside a
# string), which no JSON parser accepts; llama.cpp's own converter and JSON grammar exclude them.
_LOOSE_CHAR, _JSON_CHAR = r'char ::= [^"\\] |', r'char ::= [^"\\\x7F\x00-\x1F] |'


@lru_cache(maxsize=256)
def _schema_gbnf(schema_json: str) -> str:
    return str(json_schema_to_gbnf(schema_json)).replace(_LOOSE_CHAR, _JSON_CHAR)


def schema_grammar(schema: dict[str, Any]) -> str:
    """The GBNF of a JSON schema (compiled once per distinct schema); ``ValueError`` when llama.cpp's
    converter cannot express it."""
    try:
        return _schema_gbnf(json.dumps(schema))  # key order matters: properties are written in it
    except Exception as exc:  # the converter raises plain errors (KeyError, ValueError, …) on what it lacks
        raise ValueError(f"{type(exc).__name__}: {exc}") from None


def response_grammar(rf: ResponseFormat | Raw | None) -> str | None:
    """The grammar a response format asks for: None for text; any JSON object for ``json_object``; the
    schema's grammar for ``json_schema`` (any JSON object when the converter cannot express the schema:
    the ``json_schema`` guardrail still validates the answer, and repairs it once)."""
    if rf is None:
        return None
    if isinstance(rf, Raw):
        value = rf.value if isinstance(rf.value, dict) else {}
        js = value.get("json_schema")
        kind = value.get("type")
        schema = js.get("schema") if isinstance(js, dict) else None
    else:
        kind, schema = rf.type, rf.schema
    if kind == "json_object":
        return JSON_GBNF
    if kind != "json_schema":
        return None
    if not isinstance(schema, dict):
        return JSON_GBNF
    try:
        return schema_grammar(schema)
    except ValueError as exc:
        _log.info(
            "json_schema has no llama.cpp grammar; constraining to any JSON object", extra={"error": str(exc)}
        )
        return JSON_GBNF


def tool_plan(tools: list[ToolSpec | Raw] | None, choice: ToolChoice | Raw | None) -> ToolPlan | None:
    """The plan for a request's tools; None when the model answers in text (no tools, or ``none``).
    A tool or choice the embedded model cannot honour is a 400 naming it."""
    if not tools:
        return None
    if isinstance(choice, Raw):
        raise InvalidRequest(
            f"the embedded model cannot honour tool_choice {json.dumps(choice.value)}; use auto, none, "
            "required or a function",
            param="tool_choice",
        )
    mode = "auto" if choice is None else choice.mode
    if mode == "none":
        return None
    specs: list[ToolSpec] = []
    for i, tool in enumerate(tools):
        if isinstance(tool, Raw):
            raise InvalidRequest(
                f"the embedded model calls function tools only, not {tool.type or 'this kind'}",
                param=f"tools.{i}",
            )
        specs.append(tool)
    if mode == "tool":
        assert choice is not None
        specs = [t for t in specs if t.name == choice.name]
        if not specs:
            raise InvalidRequest(
                f"tool_choice names {choice.name!r}, which is not in tools", param="tool_choice"
            )
    calls = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": t.parameters or {"type": "object"}},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in specs
    ]
    try:
        grammar = schema_grammar(calls[0] if len(calls) == 1 else {"anyOf": calls})
    except ValueError as exc:
        raise InvalidRequest(
            f"the embedded model cannot turn these tools' parameter schemas into a grammar ({exc}); "
            "simplify the schemas or use a model that supports tools natively",
            param="tools",
        ) from None
    forced = mode != "auto"
    if not forced:
        grammar = grammar.replace("root ::=", "call ::=", 1).rstrip("\n") + "\n" + _PROSE
    return ToolPlan(grammar, _note(specs, forced), forced)


def _note(specs: list[ToolSpec], forced: bool) -> str:
    shown = [
        {"name": t.name, "description": t.description or "", "parameters": t.parameters or {"type": "object"}}
        for t in specs
    ]
    how = 'To call a function, reply with only {"name": <function name>, "arguments": <arguments object>}.'
    if forced:
        how = 'Reply with only {"name": <function name>, "arguments": <arguments object>}.'
    else:
        how += " Otherwise answer in plain text."
    return f"You can call these functions:\n{json.dumps(shown)}\n{how}"


def with_tools(messages: list[dict[str, Any]], note: str) -> list[dict[str, Any]]:
    """The conversation with the tool note in its system message (a new first one when it has none)."""
    if messages and messages[0]["role"] == "system":
        first = messages[0]
        return [{"role": "system", "content": f"{first['content']}\n\n{note}"}, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]


def message_text(m: Message) -> str:
    """What the model reads of a message: its text, and for an earlier answer the calls it made."""
    text = m.text()
    if not m.tool_calls:
        return text
    calls = [
        json.dumps({"name": c.name, "arguments": _loads(c.arguments)})
        for c in m.tool_calls
        if isinstance(c, ToolCall)
    ]
    return "\n".join([text, *calls] if text else calls)


def _loads(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def parse_call(text: str) -> ToolCall | None:
    """The tool call in a constrained answer, or None when the answer is prose (or was cut short)."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
        return None
    args = doc.get("arguments")
    return ToolCall(
        f"call_{uuid.uuid4().hex[:24]}", doc["name"], json.dumps(args if args is not None else {})
    )
