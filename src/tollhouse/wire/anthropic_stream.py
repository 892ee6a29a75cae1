"""Anthropic's streamed events ⇄ internal chunks, both stateful and one per stream.

``EventWriter`` (the /v1/messages ingress) turns internal chunks into Anthropic's named events in their order:
``message_start``, then per content block ``content_block_start`` / ``content_block_delta`` (``text_delta``,
``input_json_delta``) / ``content_block_stop`` (a ``ping`` after the first block opens), then
``message_delta`` (stop reason and usage) and ``message_stop``. ``ChunkReader`` (the anthropic provider)
turns Anthropic's events into internal chunks: text deltas, tool-call deltas (ids kept), the finish reason,
and the usage last and alone, as every provider's stream ends.
"""

from __future__ import annotations

from typing import Any

from tollhouse.types import ChatChunk, ChunkChoice, Delta, ToolCallDelta, Usage
from tollhouse.wire.anthropic import (
    STOP_TO_FINISH,
    message_id,
    stop_reason,
    usage_from_anthropic,
    usage_to_anthropic,
)

Event = tuple[str, dict[str, Any]]


class EventWriter:
    """Internal chunks in, Anthropic events out (``feed`` per chunk, ``finish`` at the end)."""

    __slots__ = (
        "_block",
        "_id",
        "_index",
        "_kind",
        "_model",
        "_pinged",
        "_reason",
        "_seq",
        "_started",
        "_tools",
        "_usage",
    )

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = ""
        self._started = False
        self._pinged = False
        self._index = -1  # index of the open content block (-1: none open yet)
        self._block = False  # a block is open
        self._kind = ""  # "text" or "tool_use"
        self._tools: dict[int, int] = {}  # internal tool-call index → its content block index
        self._reason: str | None = None
        self._seq: str | None = None
        self._usage: Usage | None = None

    def _start(self, chunk_id: str, out: list[Event]) -> None:
        self._started = True
        self._id = message_id(chunk_id)
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        out.append(("message_start", {"type": "message_start", "message": message}))

    def _open(self, block: dict[str, Any], out: list[Event]) -> None:
        self._close(out)
        self._index += 1
        self._block = True
        self._kind = block["type"]
        out.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": self._index, "content_block": block},
            )
        )
        if not self._pinged:
            self._pinged = True
            out.append(("ping", {"type": "ping"}))

    def _close(self, out: list[Event]) -> None:
        if self._block:
            self._block = False
            out.append(("content_block_stop", {"type": "content_block_stop", "index": self._index}))

    def _delta(self, delta: dict[str, Any], out: list[Event]) -> None:
        out.append(
            ("content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta})
        )

    def feed(self, chunk: ChatChunk) -> list[Event]:
        out: list[Event] = []
        if not self._started:
            self._start(chunk.id, out)
        if chunk.usage is not None:
            self._usage = chunk.usage
        for ch in chunk.choices:
            if ch.index != 0:
                continue
            d = ch.delta
            if d.content:
                if not (self._block and self._kind == "text"):
                    self._open({"type": "text", "text": ""}, out)
                self._delta({"type": "text_delta", "text": d.content}, out)
            for t in d.tool_calls or ():
                if not isinstance(t, ToolCallDelta):
                    continue
                if t.index not in self._tools:
                    block = {"type": "tool_use", "id": t.id or "", "name": t.name or "", "input": {}}
                    self._open(block, out)
                    self._tools[t.index] = self._index
                if t.arguments and self._tools[t.index] == self._index and self._block:
                    self._delta({"type": "input_json_delta", "partial_json": t.arguments}, out)
            if ch.finish_reason is not None:
                self._reason, self._seq = stop_reason(ch.finish_reason)
        return out

    def finish(self) -> list[Event]:
        """The closing events, once the stream has ended well."""
        out: list[Event] = []
        if not self._started:
            self._start("", out)
        self._close(out)
        usage = usage_to_anthropic(self._usage or Usage())
        delta = {"stop_reason": self._reason or "end_turn", "stop_sequence": self._seq}
        out.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        out.append(("message_stop", {"type": "message_stop"}))
        return out


class ChunkReader:
    """Anthropic events in (``feed(event, data)``), internal chunks out."""

    __slots__ = ("_blocks", "_id", "_input", "_model", "_tools", "_usage", "reason", "stop_sequence")

    def __init__(self, public_model: str) -> None:
        self._model = public_model
        self._id = ""
        self._tools = 0  # tool calls seen so far
        self._blocks: dict[int, int] = {}  # tool_use block index → tool-call index
        self._input: dict[str, Any] = {}
        self._usage: dict[str, Any] = {}
        self.reason: str | None = None
        self.stop_sequence: str | None = None

    def _chunk(self, delta: Delta, finish: str | None = None) -> ChatChunk:
        return ChatChunk(self._id, self._model, [ChunkChoice(0, delta, finish)])

    def feed(self, kind: str, data: dict[str, Any]) -> list[ChatChunk]:
        if kind == "message_start":
            message = data.get("message") or {}
            self._id = str(message.get("id") or "")
            self._input = dict(message.get("usage") or {})
            return [self._chunk(Delta(role="assistant", content=""))]
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                i = self._tools
                self._tools += 1
                self._blocks[int(data.get("index", 0))] = i
                call = ToolCallDelta(
                    i, str(block.get("id") or ""), "function", str(block.get("name") or ""), ""
                )
                return [self._chunk(Delta(tool_calls=[call]))]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk(Delta(content=str(block["text"])))]
            return []
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk(Delta(content=str(delta.get("text") or "")))]
            if delta.get("type") == "input_json_delta":
                at = self._blocks.get(int(data.get("index", 0)))
                if at is not None:
                    call = ToolCallDelta(at, arguments=str(delta.get("partial_json") or ""))
                    return [self._chunk(Delta(tool_calls=[call]))]
            return []
        if kind == "message_delta":
            delta = data.get("delta") or {}
            reason = delta.get("stop_reason")
            if isinstance(reason, str):
                self.reason = reason
            seq = delta.get("stop_sequence")
            if isinstance(seq, str):
                self.stop_sequence = seq
            self._usage.update(data.get("usage") or {})
            return []
        if kind == "message_stop":
            finish = STOP_TO_FINISH.get(self.reason or "end_turn", "stop")
            tail = ChatChunk(self._id, self._model, [], usage=self.usage())
            return [self._chunk(Delta(), finish), tail]
        return []  # ping, and event types added later

    def usage(self) -> Usage:
        """Input counts from ``message_start``, overridden by the final ``message_delta`` counts."""
        merged = {**self._input, **{k: v for k, v in self._usage.items() if v is not None}}
        return usage_from_anthropic(merged)
