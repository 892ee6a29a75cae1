"""Anthropic Messages API JSON ⇄ internal types, as plain dicts: client requests in and answers out (the
``/v1/messages`` ingress), requests out and answers in (the ``anthropic`` provider). Streams: see
``wire.anthropic_stream``.

Tool calls keep their ids both ways; images travel as base64 or URL sources; ``tool_result`` blocks become
``tool`` messages (and back); usage maps ``input_tokens`` + cache reads and writes onto ``prompt_tokens`` with
the cache reads as ``cached_tokens``. What a target cannot express is an ``InvalidRequest`` naming the feature
(``to_anthropic``; ``anthropic_only`` for the other direction), never dropped silently.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson

from tollhouse.errors import InvalidRequest
from tollhouse.types import (
    AudioPart,
    ChatRequest,
    ChatResponse,
    Choice,
    ContentPart,
    FilePart,
    ImagePart,
    Message,
    Raw,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
    Usage,
)

# Anthropic stop_reason ⇄ OpenAI finish_reason (the internal vocabulary).
STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
FINISH_TO_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
FINISH_TO_STOP["function_call"] = "tool_use"
FINISH_TO_STOP["content_filter"] = "refusal"

# Keys of a ChatRequest's ``extra`` that only Anthropic understands (set by the /v1/messages ingress).
ANTHROPIC_EXTRA = (
    "top_k",
    "thinking",
    "service_tier",
    "container",
    "mcp_servers",
    "output_config",
    "cache_control",
    "inference_geo",
    "speed",
)
# Content block types only Anthropic understands: relayed to Anthropic deployments, refused elsewhere.
_ANTHROPIC_BLOCKS = frozenset(
    {
        "thinking",
        "redacted_thinking",
        "search_result",
        "server_tool_use",
        "web_search_tool_result",
        "document",
    }
)
# OpenAI parameters an Anthropic deployment cannot honour: a 400 naming the parameter.
_OPENAI_ONLY = (
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "frequency_penalty",
    "presence_penalty",
    "prediction",
    "audio",
    "modalities",
    "functions",
    "function_call",
    "best_of",
    "suffix",
)
_TEXT_KEYS = frozenset({"type", "text"})
# Anthropic's server tools carry a dated type (``web_search_20250305``, ``bash_20250124``, …).
_SERVER_TOOL = re.compile(r"_\d{8}$")


def _refuse(feature: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(f"{feature} is not supported by this model's provider.", param=param)


def message_id(source: str) -> str:
    """An Anthropic-style message id (``msg_…``) for an answer whose own id is another format's."""
    if source.startswith("msg_"):
        return source
    return "msg_" + (source.rpartition("-")[2] or uuid.uuid4().hex)


# ==== the /v1/messages ingress: client request → internal ================================================


def block_to_part(b: dict[str, Any]) -> ContentPart:
    """One content block of a user or system turn (text, image, document) as a content part."""
    kind = b.get("type")
    extra = {k: v for k, v in b.items() if k not in ("type", "text", "source")} or None
    if kind == "text" and isinstance(b.get("text"), str):
        return TextPart(b["text"], extra)
    source = b.get("source")
    if kind == "image" and isinstance(source, dict):
        if source.get("type") == "base64":
            return ImagePart(data=source.get("data"), media_type=source.get("media_type"), extra=extra)
        if source.get("type") == "url":
            return ImagePart(url=source.get("url"), extra=extra)
    if kind == "document" and isinstance(source, dict) and source.get("type") == "base64":
        title = b.get("title")
        rest = {k: v for k, v in (extra or {}).items() if k != "title"} or None
        data = f"data:{source.get('media_type') or 'application/pdf'};base64,{source.get('data') or ''}"
        return FilePart(data=data, filename=title if isinstance(title, str) else None, extra=rest)
    return Raw(b)


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _tool_result(b: dict[str, Any]) -> Message:
    content = b.get("content")
    parts: str | list[ContentPart]
    if isinstance(content, str) or content is None:
        parts = content or ""
    else:
        parts = [block_to_part(x) for x in _blocks(content)]
    extra = {"is_error": True} if b.get("is_error") else None
    return Message("tool", parts, tool_call_id=str(b.get("tool_use_id") or ""), extra=extra)


def messages_from_anthropic(body: dict[str, Any]) -> list[Message]:
    """``system`` + ``messages`` as internal messages: the system prompt first, each ``tool_result`` block
    as a ``tool`` message (before the rest of its turn), each ``tool_use`` block as a tool call."""
    out: list[Message] = []
    system = body.get("system")
    if isinstance(system, str) and system:
        out.append(Message("system", system))
    elif isinstance(system, list) and system:
        parts = [block_to_part(b) for b in _blocks(system)]
        texts = [p.text for p in parts if isinstance(p, TextPart) and p.extra is None]
        out.append(Message("system", "\n".join(texts) if len(texts) == len(parts) else parts))
    for m in body.get("messages") or []:
        role = m["role"]
        content = m.get("content")
        if isinstance(content, str):
            out.append(Message(role, content))
            continue
        blocks: list[ContentPart] = []
        calls: list[ToolCall | Raw] = []
        for b in _blocks(content):
            kind = b.get("type")
            if kind == "tool_result":
                out.append(_tool_result(b))
            elif kind == "tool_use":
                extra = {k: v for k, v in b.items() if k not in ("type", "id", "name", "input")} or None
                args = orjson.dumps(b.get("input") or {}).decode()
                calls.append(ToolCall(str(b.get("id")), str(b.get("name")), args, extra))
            else:
                blocks.append(block_to_part(b))
        if blocks or calls:
            texts = [p.text for p in blocks if isinstance(p, TextPart) and p.extra is None]
            value: str | list[ContentPart] | None = blocks or None
            if role == "assistant" and blocks and len(texts) == len(blocks):
                value = "".join(texts)
            out.append(Message(role, value, tool_calls=calls or None))
    return out


def tool_from_anthropic(t: dict[str, Any]) -> ToolSpec | Raw:
    """A client tool (name + input_schema) as a function; a server tool (it has a ``type``) stays Raw."""
    if t.get("type") not in (None, "custom") or not isinstance(t.get("name"), str):
        return Raw(t)
    extra = {k: v for k, v in t.items() if k not in ("type", "name", "description", "input_schema")}
    return ToolSpec(t["name"], t.get("description"), t.get("input_schema"), extra=extra or None)


def tool_choice_from_anthropic(c: dict[str, Any] | None) -> ToolChoice | None:
    if not c:
        return None
    kind = c.get("type")
    if kind == "any":
        return ToolChoice("required")
    if kind == "tool":
        return ToolChoice("tool", c.get("name"))
    if kind == "none":
        return ToolChoice("none")
    return ToolChoice("auto")


# ==== internal answer → the client's message object ======================================================


def usage_to_anthropic(u: Usage) -> dict[str, Any]:
    cached = u.cached_tokens or 0
    return {
        "input_tokens": max(0, u.prompt_tokens - cached),
        "output_tokens": u.completion_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def stop_reason(finish: str | None, message: Message | None = None) -> tuple[str | None, str | None]:
    """(stop_reason, stop_sequence) for an internal finish reason; the matched stop sequence rides in the
    answer's ``extra`` when an Anthropic upstream reported one."""
    seq = (message.extra or {}).get("stop_sequence") if message is not None else None
    if finish == "stop" and isinstance(seq, str):
        return "stop_sequence", seq
    if finish is None:
        return None, None
    return FINISH_TO_STOP.get(finish, "end_turn"), None


def _tool_use(c: ToolCall | Raw) -> dict[str, Any]:
    if isinstance(c, Raw):
        return dict(c.value) if isinstance(c.value, dict) else {"type": "tool_use", "input": c.value}
    try:
        args = orjson.loads(c.arguments) if c.arguments.strip() else {}
    except orjson.JSONDecodeError:
        args = {"_raw_arguments": c.arguments}  # the model wrote invalid JSON: kept, not lost
    if not isinstance(args, dict):
        args = {"_raw_arguments": c.arguments}
    return {"type": "tool_use", "id": c.id, "name": c.name, "input": args}


def content_blocks(m: Message) -> list[dict[str, Any]]:
    """An assistant message as content blocks: its text, then one ``tool_use`` per tool call."""
    blocks: list[dict[str, Any]] = []
    content = m.content
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif content:
        for p in content:
            blocks.append(part_to_block(p))
    for call in m.tool_calls or ():
        blocks.append(_tool_use(call))
    return blocks


def response_to_anthropic(r: ChatResponse) -> dict[str, Any]:
    choice = r.choices[0] if r.choices else None
    message = choice.message if choice is not None else Message("assistant", "")
    reason, seq = stop_reason(choice.finish_reason if choice else None, message)
    return {
        "id": message_id(r.id),
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": content_blocks(message),
        "stop_reason": reason,
        "stop_sequence": seq,
        "usage": usage_to_anthropic(r.usage),
    }


# ==== the anthropic provider: internal request → Anthropic's body ========================================


def part_to_block(p: ContentPart) -> dict[str, Any]:
    """A content part as an Anthropic block; what Anthropic cannot take is a 400 naming it."""
    out: dict[str, Any]
    if isinstance(p, TextPart):
        out = {"type": "text", "text": p.text}
    elif isinstance(p, ImagePart):
        inline = p.inline()
        if inline is not None:
            out = {"type": "image", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}
        else:
            out = {"type": "image", "source": {"type": "url", "url": p.url}}
        if p.extra:
            out.update({k: v for k, v in p.extra.items() if k != "detail"})
        return out
    elif isinstance(p, FilePart):
        if p.data is None or not p.data.startswith("data:") or ";base64," not in p.data:
            raise _refuse("A file part by file_id", "messages")
        head, _, data = p.data[5:].partition(";base64,")
        out = {"type": "document", "source": {"type": "base64", "media_type": head, "data": data}}
        if p.filename is not None:
            out["title"] = p.filename
    elif isinstance(p, AudioPart):
        raise _refuse("Audio input (input_audio)", "messages")
    else:
        kind = p.type
        if not isinstance(p.value, dict) or kind is None or kind in ("image_url", "input_audio", "file"):
            raise _refuse(f"The content part type {kind!r}", "messages")
        return dict(p.value)
    if p.extra:
        out.update(p.extra)
    return out


def _content(content: str | list[ContentPart] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [part_to_block(p) for p in content]


def _tool_result_block(m: Message) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id or ""}
    content = m.content
    if isinstance(content, str) or content is None:
        block["content"] = content or ""
    else:
        block["content"] = _content(content)
    if (m.extra or {}).get("is_error"):
        block["is_error"] = True
    return block


def _tool_use_block(c: ToolCall | Raw, where: str) -> dict[str, Any]:
    if isinstance(c, Raw):
        raise _refuse("A tool call of a type other than function", where)
    try:
        args = orjson.loads(c.arguments) if c.arguments.strip() else {}
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            f"The arguments of tool call {c.id!r} are not valid JSON; Anthropic needs a JSON object.",
            param=where,
        ) from None
    if not isinstance(args, dict):
        raise InvalidRequest(f"The arguments of tool call {c.id!r} are not a JSON object.", param=where)
    out = {"type": "tool_use", "id": c.id, "name": c.name, "input": args}
    if c.extra:
        out.update({k: v for k, v in c.extra.items() if k != "index"})
    return out


def _system(messages: list[Message]) -> tuple[Any, list[Message]]:
    """The leading system / developer messages as Anthropic's ``system``; a later one is a 400."""
    lead = 0
    while lead < len(messages) and messages[lead].role in ("system", "developer"):
        lead += 1
    for i, m in enumerate(messages[lead:], lead):
        if m.role in ("system", "developer"):
            raise InvalidRequest(
                "A system message after the conversation has started is not supported by Anthropic "
                "models; put every system message first.",
                param=f"messages[{i}]",
            )
    if lead == 0:
        return None, messages
    blocks = [b for m in messages[:lead] for b in _content(m.content)]
    if all(set(b) == _TEXT_KEYS for b in blocks):
        return "\n".join(b["text"] for b in blocks), messages[lead:]
    return blocks, messages[lead:]


def messages_to_anthropic(messages: list[Message]) -> tuple[Any, list[dict[str, Any]]]:
    """(system, messages): tool messages become ``tool_result`` blocks of a user turn, tool calls
    ``tool_use`` blocks of the assistant turn; consecutive turns of one role are merged."""
    system, rest = _system(messages)
    turns: list[dict[str, Any]] = []
    for i, m in enumerate(rest):
        where = f"messages[{i + len(messages) - len(rest)}]"
        if m.role == "tool":
            role, blocks = "user", [_tool_result_block(m)]
        elif m.role in ("user", "assistant"):
            role = m.role
            blocks = _content(m.content)
            for call in m.tool_calls or ():
                blocks.append(_tool_use_block(call, f"{where}.tool_calls"))
        else:
            raise InvalidRequest(
                f"The message role {m.role!r} is not supported by Anthropic models.", param=where
            )
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def tool_to_anthropic(t: ToolSpec | Raw) -> dict[str, Any]:
    if isinstance(t, Raw):
        if isinstance(t.value, dict) and t.type not in (None, "function"):
            return dict(t.value)  # an Anthropic server tool, as its client sent it
        raise _refuse("A tool that is not a function", "tools")
    out: dict[str, Any] = {"name": t.name}
    if t.description is not None:
        out["description"] = t.description
    out["input_schema"] = t.parameters if t.parameters is not None else {"type": "object", "properties": {}}
    if t.extra:
        out.update({k: v for k, v in t.extra.items() if k not in ("type", "strict")})
    return out


def tool_choice_to_anthropic(c: ToolChoice | Raw | None, parallel: Any) -> dict[str, Any] | None:
    if isinstance(c, Raw):
        raise _refuse("This tool_choice", "tool_choice")
    out: dict[str, Any] | None = None
    if c is not None:
        kind = {"auto": "auto", "required": "any", "none": "none", "tool": "tool"}[c.mode]
        out = {"type": kind}
        if c.mode == "tool":
            out["name"] = c.name
    if parallel is False:
        out = out or {"type": "auto"}
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    return out


def request_to_anthropic(
    req: ChatRequest, upstream_model: str, default_max_tokens: int, *, stream: bool
) -> dict[str, Any]:
    """The body of ``POST /v1/messages`` for ``req``; raises ``InvalidRequest`` for what Anthropic lacks."""
    if req.n != 1:
        raise _refuse(f"n={req.n} (several choices per request)", "n")
    for key in _OPENAI_ONLY:
        value = req.extra.get(key)
        if value is not None and value is not False and value != 0:
            raise _refuse(f"The parameter '{key}'", key)
    if req.seed is not None:
        raise _refuse("The parameter 'seed'", "seed")
    rf = req.response_format
    if rf is not None and not (isinstance(rf, ResponseFormat) and rf.type == "text"):
        raise _refuse("response_format (JSON output)", "response_format")
    if req.temperature is not None and req.temperature > 1:
        raise InvalidRequest(
            f"temperature {req.temperature} is above 1, the largest Anthropic models accept.",
            param="temperature",
        )
    system, messages = messages_to_anthropic(req.messages)
    body: dict[str, Any] = {"model": upstream_model, "messages": messages}
    if system is not None:
        body["system"] = system
    body["max_tokens"] = req.max_tokens if req.max_tokens is not None else default_max_tokens
    if req.stop:
        body["stop_sequences"] = req.stop
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    for key in ANTHROPIC_EXTRA:
        if req.extra.get(key) is not None:
            body[key] = req.extra[key]
    if body.get("service_tier") not in (None, "auto", "standard_only"):
        del body["service_tier"]  # OpenAI's tiers (default, flex, priority) mean nothing to Anthropic
    if req.tools:
        body["tools"] = [tool_to_anthropic(t) for t in req.tools]
    choice = tool_choice_to_anthropic(req.tool_choice, req.extra.get("parallel_tool_calls"))
    if choice is not None:
        body["tool_choice"] = choice
    if req.user is not None:
        body["metadata"] = {"user_id": req.user}
    if stream:
        body["stream"] = True
    return body


# ==== the anthropic provider: Anthropic's answer → internal ===============================================


def usage_from_anthropic(d: dict[str, Any] | None) -> Usage:
    """Anthropic's ``input_tokens`` exclude the prompt-cache reads and writes; the internal prompt count
    includes both, with the reads as ``cached_tokens`` (priced at ``cached_input_per_1m``)."""
    d = d or {}
    read = int(d.get("cache_read_input_tokens") or 0)
    written = int(d.get("cache_creation_input_tokens") or 0)
    prompt = int(d.get("input_tokens") or 0) + read + written
    has_cache = "cache_read_input_tokens" in d or "cache_creation_input_tokens" in d
    return Usage(prompt, int(d.get("output_tokens") or 0), read if has_cache else None)


def message_from_anthropic(blocks: list[Any]) -> Message:
    """An answer's content blocks as one assistant message (text joined; each tool_use a tool call)."""
    texts: list[str] = []
    calls: list[ToolCall | Raw] = []
    others: list[ContentPart] = []
    for b in blocks:
        if not isinstance(b, dict):
            continue
        kind = b.get("type")
        if kind == "text":
            texts.append(str(b.get("text") or ""))
        elif kind == "tool_use":
            args = orjson.dumps(b.get("input") or {}).decode()
            calls.append(ToolCall(str(b.get("id") or ""), str(b.get("name") or ""), args))
        elif kind not in ("thinking", "redacted_thinking"):
            others.append(Raw(b))
    content: str | list[ContentPart] | None = "".join(texts) if texts or not calls else None
    if others:
        content = [TextPart(t) for t in texts] + others
    return Message("assistant", content, tool_calls=calls or None)


def response_from_anthropic(d: dict[str, Any], public_model: str) -> ChatResponse:
    message = message_from_anthropic(d.get("content") or [])
    seq = d.get("stop_sequence")
    if isinstance(seq, str):
        message.extra = {"stop_sequence": seq}
    reason = d.get("stop_reason")
    finish = STOP_TO_FINISH.get(reason, "stop") if isinstance(reason, str) else None
    return ChatResponse(
        id=str(d.get("id") or ""),
        model=public_model,
        choices=[Choice(0, message, finish)],
        usage=usage_from_anthropic(d.get("usage")),
    )


# ==== what other targets cannot take ========================================================================


def anthropic_only(req: ChatRequest) -> InvalidRequest | None:
    """The first Anthropic-only feature in ``req`` (from the /v1/messages ingress), as the 400 a deployment
    that is not Anthropic answers; None when there is none. ``top_k`` is not one (vLLM, Ollama and llama.cpp
    servers take it), nor are the hints ``cache_control``, ``service_tier``, ``inference_geo`` and ``speed``
    (relayed to Anthropic, meaningless elsewhere)."""
    for key in ("thinking", "container", "mcp_servers", "output_config"):
        if req.extra.get(key) is not None:
            return _refuse(f"The parameter '{key}' (Anthropic only)", key)
    for t in req.tools or ():
        if isinstance(t, Raw) and t.type is not None and _SERVER_TOOL.search(t.type):
            return _refuse(f"The server tool {t.type!r} (Anthropic only)", "tools")
    for i, m in enumerate(req.messages):
        if isinstance(m.content, list):
            for p in m.content:
                if isinstance(p, Raw) and p.type in _ANTHROPIC_BLOCKS:
                    return _refuse(f"The content block {p.type!r} (Anthropic only)", f"messages[{i}]")
    return None


def check_portable(req: ChatRequest) -> None:
    """Raise the 400 of ``anthropic_only`` (providers that are not Anthropic call this first)."""
    refused = anthropic_only(req)
    if refused is not None:
        raise refused
