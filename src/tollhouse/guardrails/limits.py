"""Request limits as a guardrail: max input tokens, max messages (or inputs), max output tokens, tools."""

from __future__ import annotations

from tollhouse.config.guardrails import GuardLimits
from tollhouse.guardrails.base import ALLOW, Block, Mode, Phase, Verdict
from tollhouse.types import GuardInput, Message, Raw, RequestContext, ToolSpec


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

    def verdict(self, inp: GuardInput) -> Verdict:
        """Every limit, on the whole request. Inputs that are not a conversation (embeddings) count their
        items as messages and bring their own token count."""
        lim = self.limits
        if not inp.conversation:
            if lim.max_messages is not None and (inp.items or 0) > lim.max_messages:
                return Block(f"more than {lim.max_messages} inputs")
            if lim.max_input_tokens is not None and (inp.tokens or 0) > lim.max_input_tokens:
                return Block(f"input longer than {lim.max_input_tokens} tokens")
            return ALLOW
        first = self._messages(inp.messages)
        if isinstance(first, Block):
            return first
        if lim.max_output_tokens is not None and (inp.max_tokens or 0) > lim.max_output_tokens:
            return Block(f"max_tokens above {lim.max_output_tokens}")
        if lim.allowed_tools is not None and inp.tool_names:
            allowed = set(lim.allowed_tools)
            if any(name not in allowed for name in inp.tool_names):
                return Block("a tool that is not allowed")
        return ALLOW

    async def check(self, messages: list[Message], ctx: RequestContext) -> Verdict:
        """The limits that need only the messages (the chain calls ``verdict`` with the whole request)."""
        return self._messages(messages)
