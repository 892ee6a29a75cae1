"""Anthropic Messages API request bodies as pydantic models: lenient with unknown fields (accepted, reported
and dropped), strict where Anthropic is strict (``max_tokens`` required, roles, ranges, block shapes: a 400
naming the field), converted to a ``ChatRequest`` by ``to_internal`` (``wire.anthropic``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from tollhouse.api.errors import FieldError
from tollhouse.types import ChatRequest, Message
from tollhouse.wire.anthropic import (
    ANTHROPIC_EXTRA,
    messages_from_anthropic,
    tool_choice_from_anthropic,
    tool_from_anthropic,
)

MAX_TOKENS = 2**31 - 1
OURS = {"retrieval"}  # Tollhouse's extension fields (docs/RETRIEVAL.md), not relayed upstream
_BLOCKS = {
    "text": ("text",),
    "image": ("source",),
    "document": ("source",),
    "tool_use": ("id", "name", "input"),
    "tool_result": ("tool_use_id",),
}
_SOURCES = {"image": ("base64", "url"), "document": ("base64", "url", "text", "content", "file")}


def _check_block(b: Any, where: str, role: str) -> None:
    if not isinstance(b, dict) or not isinstance(b.get("type"), str):
        raise FieldError(where, "each content block is an object with a string 'type'")
    kind = b["type"]
    for key in _BLOCKS.get(kind, ()):
        if key not in b:
            raise FieldError(f"{where}.{key}", f"a {kind} block needs '{key}'")
    if kind == "text" and not isinstance(b["text"], str):
        raise FieldError(f"{where}.text", "must be a string")
    if kind in _SOURCES:
        source = b["source"]
        if not isinstance(source, dict) or source.get("type") not in _SOURCES[kind]:
            allowed = ", ".join(_SOURCES[kind])
            raise FieldError(f"{where}.source.type", f"a {kind} source type is one of: {allowed}")
        inline = kind == "image" and source["type"] == "base64"
        if inline and not (isinstance(source.get("data"), str) and isinstance(source.get("media_type"), str)):
            raise FieldError(f"{where}.source", "a base64 image source needs 'media_type' and 'data'")
        if source["type"] == "url" and not isinstance(source.get("url"), str):
            raise FieldError(f"{where}.source.url", "must be a string")
    if kind == "tool_use":
        if role != "assistant":
            raise FieldError(where, "tool_use blocks belong to assistant turns")
        if not isinstance(b["input"], dict):
            raise FieldError(f"{where}.input", "must be an object")
    if kind == "tool_result":
        if role != "user":
            raise FieldError(where, "tool_result blocks belong to user turns")
        content = b.get("content")
        if isinstance(content, list):
            for j, x in enumerate(content):
                _check_block(x, f"{where}.content.{j}", role)


class MessageParam(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]

    @field_validator("content")
    @classmethod
    def _blocks(cls, v: Any, info: Any) -> Any:
        if isinstance(v, list):
            role = info.data.get("role", "user")
            for i, b in enumerate(v):
                _check_block(b, str(i), role)
        return v


class MessagesRequest(BaseModel):
    """``POST /v1/messages`` (and, without ``max_tokens``, ``/v1/messages/count_tokens``)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[MessageParam] = Field(min_length=1)
    max_tokens: StrictInt = Field(ge=1, le=MAX_TOKENS)
    system: str | list[dict[str, Any]] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: StrictInt | None = Field(None, ge=0)
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream: StrictBool = False
    thinking: dict[str, Any] | None = None
    service_tier: str | None = None
    container: Any = None
    mcp_servers: list[dict[str, Any]] | None = None
    output_config: dict[str, Any] | None = None
    cache_control: dict[str, Any] | None = None  # automatic prompt caching (a hint)
    inference_geo: str | None = None
    speed: str | None = None
    cache: Any = None  # Tollhouse's per-request cache directives (as on the OpenAI ingress)

    @field_validator("system")
    @classmethod
    def _system(cls, v: Any) -> Any:
        if isinstance(v, list):
            for i, b in enumerate(v):
                if not isinstance(b, dict) or b.get("type") != "text" or not isinstance(b.get("text"), str):
                    raise FieldError(str(i), "system blocks are text blocks")
        return v

    @field_validator("tools")
    @classmethod
    def _tools(cls, v: Any) -> Any:
        for i, t in enumerate(v or ()):
            if not isinstance(t.get("name"), str) or not t["name"]:
                raise FieldError(f"{i}.name", "every tool needs a name")
            if t.get("type") in (None, "custom") and not isinstance(t.get("input_schema"), dict):
                raise FieldError(f"{i}.input_schema", "a client tool needs an input_schema object")
        return v

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice(cls, v: Any) -> Any:
        if v is None:
            return v
        if v.get("type") not in ("auto", "any", "tool", "none"):
            raise FieldError("type", "must be one of: auto, any, tool, none")
        if v["type"] == "tool" and not isinstance(v.get("name"), str):
            raise FieldError("name", "a tool choice of type 'tool' names the tool")
        return v

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, v: Any) -> Any:
        if v is not None and v.get("user_id") is not None and not isinstance(v["user_id"], str):
            raise FieldError("user_id", "must be a string")
        return v

    def ignored_fields(self) -> list[str]:
        return sorted(k for k in (self.model_extra or {}) if k not in OURS)

    def to_internal(self) -> ChatRequest:
        body: dict[str, Any] = {"system": self.system, "messages": [m.model_dump() for m in self.messages]}
        messages: list[Message] = messages_from_anthropic(body)
        extra: dict[str, Any] = {}
        for key in ANTHROPIC_EXTRA:
            value = getattr(self, key)
            if value is not None:
                extra[key] = value
        choice = self.tool_choice
        if choice is not None and choice.get("disable_parallel_tool_use") is True:
            extra["parallel_tool_calls"] = False
        user = (self.metadata or {}).get("user_id")
        return ChatRequest(
            model=self.model,
            messages=messages,
            stream=self.stream,
            include_usage=True,  # Anthropic's message_delta always carries the usage
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=self.stop_sequences or None,
            user=user,
            tools=[tool_from_anthropic(t) for t in self.tools] if self.tools else None,
            tool_choice=tool_choice_from_anthropic(choice),
            extra=extra,
            # The retrieval stage reads it, as on the OpenAI ingress (one dict lookup when absent).
            retrieval=(self.model_extra or {}).get("retrieval"),
        )


class CountTokensRequest(MessagesRequest):
    max_tokens: StrictInt = Field(1, ge=1, le=MAX_TOKENS)
