"""A cached answer as bytes: the response in OpenAI's JSON shape plus what accounting needs (the
deployment that produced it and its cost), its replay as a stream of chunks, and fresh tool-call ids for
each serving."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from tollhouse.types import (
    ChatChunk,
    ChatResponse,
    Choice,
    ChunkChoice,
    Delta,
    Message,
    Raw,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from tollhouse.wire.openai import chat_response_from_dict, chat_response_to_dict

REPLAY_CHUNK_CHARS = 64  # a replayed answer is sent in pieces of about this size, like a live stream


@dataclass(slots=True)
class CachedAnswer:
    response: ChatResponse
    deployment: str | None
    cost_usd: float | None  # what producing it cost; a hit saves this much
    stored_at: float

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "r": chat_response_to_dict(self.response),
                "d": self.deployment,
                "c": self.cost_usd,
                "t": self.stored_at,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes, model: str) -> CachedAnswer:
        d = orjson.loads(raw)
        return cls(chat_response_from_dict(d["r"], model), d.get("d"), d.get("c"), float(d.get("t") or 0))

    @classmethod
    def of(cls, response: ChatResponse, deployment: str | None, cost_usd: float | None) -> CachedAnswer:
        return cls(response, deployment, cost_usd, time.time())


def cacheable(resp: ChatResponse) -> bool:
    """Only complete answers: never truncated (`length`), filtered, empty or unfinished ones."""
    if not resp.choices:
        return False
    return all(c.finish_reason in ("stop", "tool_calls") for c in resp.choices)


def fresh_tool_call_ids(resp: ChatResponse) -> ChatResponse:
    """``resp`` (changed in place: a served answer is parsed anew from its bytes) with each tool-call id
    replaced by a new one, so a client that keys its state by call id never sees one twice. An id that
    occurs more than once in the answer gets the same new id each time."""
    renamed: dict[str, str] = {}

    def fresh(old: str) -> str:
        new = renamed.get(old)
        if new is None:
            new = renamed[old] = "call_" + uuid.uuid4().hex[:24]
        return new

    for c in resp.choices:
        calls = c.message.tool_calls
        if calls:
            c.message.tool_calls = [_renamed(call, fresh) for call in calls]
    return resp


def _renamed(call: ToolCall | Raw, fresh: Callable[[str], str]) -> ToolCall | Raw:
    if isinstance(call, ToolCall):
        call.id = fresh(call.id)
        return call
    v = call.value
    if isinstance(v, dict) and isinstance(v.get("id"), str):
        return Raw({**v, "id": fresh(v["id"])})
    return call


def replay(resp: ChatResponse, include_usage: bool) -> list[ChatChunk]:
    """The chunks a live stream of this answer would have sent: role, content in pieces, tool calls, the
    finish reason, then (when asked for) the usage chunk."""
    out: list[ChatChunk] = []

    def chunk(choices: list[ChunkChoice]) -> None:
        out.append(ChatChunk(id=resp.id, model=resp.model, choices=choices, created=resp.created))

    for c in resp.choices:
        m = c.message
        chunk([ChunkChoice(c.index, Delta(role=m.role or "assistant", content=""))])
        text = m.text()
        for i in range(0, len(text), REPLAY_CHUNK_CHARS):
            chunk([ChunkChoice(c.index, Delta(content=text[i : i + REPLAY_CHUNK_CHARS]))])
        if m.tool_calls:
            calls = [_call_delta(i, tc) for i, tc in enumerate(m.tool_calls)]
            chunk([ChunkChoice(c.index, Delta(tool_calls=calls))])
        chunk([ChunkChoice(c.index, Delta(), finish_reason=c.finish_reason)])
    if include_usage:
        out.append(
            ChatChunk(id=resp.id, model=resp.model, choices=[], usage=resp.usage, created=resp.created)
        )
    return out


def _call_delta(index: int, call: ToolCall | Raw) -> ToolCallDelta | Raw:
    """A whole tool call as the one stream fragment that carries it all."""
    if isinstance(call, Raw):
        v = call.value
        return Raw({**v, "index": index}) if isinstance(v, dict) else call
    extra = call.extra
    if extra is not None and "index" in extra:  # the stream position replaces any index the call carried
        extra = {k: v for k, v in extra.items() if k != "index"} or None
    return ToolCallDelta(index, call.id, "function", call.name, call.arguments, extra)


class Assembler:
    """Rebuilds the complete answer of a stream from its chunks, to store it once the stream has ended.
    Gives up (``build`` returns None) on tool-call deltas, which are stored only from JSON responses."""

    __slots__ = ("_finish", "_id", "_model", "_parts", "_roles", "_usage", "broken")

    def __init__(self) -> None:
        self._id = ""
        self._model = ""
        self._parts: dict[int, list[str]] = {}
        self._roles: dict[int, str] = {}
        self._finish: dict[int, str | None] = {}
        self._usage: Usage | None = None
        self.broken = False

    def feed(self, chunk: ChatChunk) -> None:
        self._id = self._id or chunk.id
        self._model = self._model or chunk.model
        if chunk.usage is not None:
            self._usage = chunk.usage
        for c in chunk.choices:
            d = c.delta
            if d.tool_calls:
                self.broken = True
            if d.role:
                self._roles[c.index] = d.role
            if d.content:
                self._parts.setdefault(c.index, []).append(d.content)
            else:
                self._parts.setdefault(c.index, [])
            if c.finish_reason is not None:
                self._finish[c.index] = c.finish_reason

    def build(self) -> ChatResponse | None:
        if self.broken or not self._parts or self._usage is None:
            return None
        choices = [
            Choice(
                index=i,
                message=Message(role=self._roles.get(i, "assistant"), content="".join(parts)),
                finish_reason=self._finish.get(i),
            )
            for i, parts in sorted(self._parts.items())
        ]
        return ChatResponse(id=self._id, model=self._model, choices=choices, usage=self._usage)
