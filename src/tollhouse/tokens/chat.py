"""A chat request's prompt, counted with any text counter: every text the upstream is sent (roles, contents,
names, tool calls and their ids, tool definitions, a response schema) plus allowances for what a text
counter cannot see (markers around messages, the reply's priming, images, audio, files). The figures are
stated in docs/adr/0007-reservations.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from tollhouse.types import (
    AudioPart,
    ChatRequest,
    ContentPart,
    FilePart,
    ImagePart,
    Raw,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
)

IMAGE_TOKENS = 1_600  # OpenAI bills at most 1,445 for a high-detail image (GPT-4o); Anthropic ~1,600
FILE_TOKENS = 1_600  # a file part: this plus a quarter of its inline data (an allowance, not a bound)
AUDIO_CHARS = 32  # one token per 32 characters of base64 audio (≈ 24 bytes; speech bills ~10 tokens/s)
TOOL_TOKENS = 16  # per tool definition, beyond its JSON text
TOOL_CALL_TOKENS = 8  # per tool call in an assistant message, beyond its id, name and arguments
FORMAT_TOKENS = 16  # a json_schema response format, beyond the schema's JSON text


@dataclass(frozen=True, slots=True)
class Overhead:
    """Tokens a text counter cannot see: around each message, once per request, between content parts."""

    message: int
    request: int
    part: int = 1


# OpenAI's chat format costs 3 tokens per message (+1 with a name) and 3 to prime the reply.
BPE_OVERHEAD = Overhead(message=4, request=8)
# Unknown chat templates: role markers around each message, and a preamble (a short default system prompt).
BYTE_OVERHEAD = Overhead(message=8, request=64)


def utf8_len(text: str) -> int:
    """UTF-8 bytes of ``text`` (no byte-level tokenizer makes more tokens than that)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _part(part: ContentPart, count: Callable[[str], int]) -> int:
    if isinstance(part, TextPart):
        return count(part.text)
    if isinstance(part, ImagePart):
        return IMAGE_TOKENS
    if isinstance(part, AudioPart):
        return len(part.data) // AUDIO_CHARS + TOOL_CALL_TOKENS
    if isinstance(part, FilePart):
        return FILE_TOKENS + len(part.data or "") // 4
    return utf8_len(_json(part.value))  # a part the vocabulary does not model: its JSON, in bytes


def _tool(tool: ToolSpec | Raw, count: Callable[[str], int]) -> int:
    if isinstance(tool, Raw):
        return TOOL_TOKENS + utf8_len(_json(tool.value))
    spec: dict[str, Any] = {"name": tool.name, "description": tool.description, "parameters": tool.parameters}
    return TOOL_TOKENS + count(_json(spec)) + (utf8_len(_json(tool.extra)) if tool.extra else 0)


def _call(call: ToolCall | Raw, count: Callable[[str], int]) -> int:
    if isinstance(call, Raw):
        return TOOL_CALL_TOKENS + utf8_len(_json(call.value))
    extra = utf8_len(_json(call.extra)) if call.extra else 0
    return TOOL_CALL_TOKENS + count(call.id) + count(call.name) + count(call.arguments) + extra


def _format(rf: ResponseFormat | Raw | None, count: Callable[[str], int]) -> int:
    if isinstance(rf, Raw):
        return FORMAT_TOKENS + utf8_len(_json(rf.value))
    if rf is None or rf.schema is None:
        return 0
    return FORMAT_TOKENS + count(_json(rf.schema)) + count(rf.name or "") + count(rf.description or "")


def _choice(choice: ToolChoice | Raw | None, count: Callable[[str], int]) -> int:
    if isinstance(choice, Raw):
        return utf8_len(_json(choice.value))
    return TOOL_CALL_TOKENS + count(choice.name) if choice is not None and choice.name else 0


def text_chars(req: ChatRequest) -> int:
    """Characters of the messages' text: decides whether a prompt is counted or bounded (cheap)."""
    n = 0
    for m in req.messages:
        content = m.content
        if isinstance(content, str):
            n += len(content)
        elif content is not None:
            n += sum(len(p.text) for p in content if isinstance(p, TextPart))
    return n


def chat_tokens(req: ChatRequest, count: Callable[[str], int], over: Overhead) -> int:
    """The prompt of ``req`` counted with ``count`` (tokens of one text) plus ``over``."""
    n = over.request
    for m in req.messages:
        n += over.message + count(m.role)
        content = m.content
        if isinstance(content, str):
            n += count(content)
        elif content is not None:
            for part in content:
                n += over.part + _part(part, count)
        if m.name:
            n += 1 + count(m.name)
        if m.tool_calls:
            n += sum(_call(c, count) for c in m.tool_calls)
        if m.tool_call_id:
            n += count(m.tool_call_id)
        if m.extra:
            n += utf8_len(_json(m.extra))
    if req.tools:
        n += sum(_tool(t, count) for t in req.tools)
    return n + _format(req.response_format, count) + _choice(req.tool_choice, count)
