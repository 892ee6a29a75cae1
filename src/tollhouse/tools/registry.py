"""The tool registry: every tool the gateway may run, by name. Sources (built-ins, HTTP tools, each MCP
server, or a later feature such as retrieval through ``register``) add tools; an MCP server replaces its own
set when its list changes."""

from __future__ import annotations

from tollhouse.tools.base import Tool
from tollhouse.types import Principal


class ToolRegistry:
    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def register(self, tool: Tool) -> None:
        """Add a tool (the hook for tools other features provide, e.g. ``retrieve``). A name already taken
        by another source is refused (``ValueError``): two tools must never answer to one name."""
        old = self._tools.get(tool.name)
        if old is not None and old.source != tool.source:
            raise ValueError(f"tool name '{tool.name}' is already registered by {old.source}")
        self._tools[tool.name] = tool

    def replace(self, source: str, tools: list[Tool]) -> None:
        """The tools of ``source`` become exactly ``tools`` (an MCP server's list after a change)."""
        for name in [n for n, t in self._tools.items() if t.source == source]:
            del self._tools[name]
        for tool in tools:
            self.register(tool)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def permitted(self, name: str, principal: Principal) -> bool:
        tool = self._tools.get(name)
        return tool is not None and tool.scope.allows(principal)

    def __len__(self) -> int:
        return len(self._tools)
