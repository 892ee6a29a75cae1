"""Request limits as a guardrail: max input tokens, max messages (or inputs), max output tokens, tools."""

from __future__ import annotations

from tollhouse.config.guardrails import GuardLimits
from tollhouse.guardrails.base import ALLOW, Block, Mode, Phase, Verdict
from tollhouse.types import ChatRequest, Message, Raw, RequestContext, ToolSpec


def tool_name(tool: ToolSpec | Raw) -> str | None:
    """The name of the function a tool declares (None for a tool of another kind)."""
    if isinstance(tool, ToolSpec):
        return tool.name
    fn = tool.value.get("function") if isinstance(tool.value, dict) else None
    name = fn.get("name") if isinstance(fn, dict) else None
    return name if isinstance(name, str) else None


def _estimate_tokens(messages: list[Message]) -> int:
    return sum(len(m.text()) + 4 for m in messages) // 4 + 1


class LimitsGuard:
    """Limits of one chain (default or per key / model override)."""

    name = "limits"
    phases: frozenset[Phase] = frozenset({"input"})
    cost = 0

    def __init__(self, limits: GuardLimits, mode: Mode) -> None:
        self.limits = limits
        self.mode = mode

    def _messages(self, messages: list[Message]) -> Verdict:
        lim = self.limits
        if lim.max_messages is not None and len(messages) > lim.max_messages:
            return Block(f"more than {lim.max_messages} messages")
        if lim.max_input_tokens is not None and _estimate_tokens(messages) > lim.max_input_tokens:
            return Block(f"prompt longer than {lim.max_input_tokens} tokens")
        return ALLOW

    def verdict_counts(self, items: int, tokens: int) -> Verdict:
        """Limits for inputs that are not a conversation (embeddings): items count as messages."""
        lim = self.limits
        if lim.max_messages is not None and items > lim.max_messages:
            return Block(f"more than {lim.max_messages} inputs")
        if lim.max_input_tokens is not None and tokens > lim.max_input_tokens:
            return Block(f"input longer than {lim.max_input_tokens} tokens")
        return ALLOW

    def verdict(self, req: ChatRequest) -> Verdict:
        """Every limit, on the whole request."""
        lim = self.limits
        first = self._messages(req.messages)
        if isinstance(first, Block):
            return first
        if lim.max_output_tokens is not None and (req.max_tokens or 0) > lim.max_output_tokens:
            return Block(f"max_tokens above {lim.max_output_tokens}")
        if lim.allowed_tools is not None and req.tools:
            allowed = set(lim.allowed_tools)
            if any(tool_name(t) not in allowed for t in req.tools):
                return Block("a tool that is not allowed")
        return ALLOW

    async def check(self, messages: list[Message], ctx: RequestContext) -> Verdict:
        """The limits that need only the messages (the chain calls ``verdict`` with the whole request)."""
        return self._messages(messages)
