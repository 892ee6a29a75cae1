"""Server-side tools from the `tools:` settings: the registry with the built-ins, the HTTP tools and the MCP
servers' tools, and the loop that runs them. ``Tools.start`` connects the MCP servers; ``aclose`` stops them
and closes the HTTP pool. Other features add their tools through ``Tools.registry.register`` (e.g. a
``retrieve`` tool over the gateway's document collections)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import jsonschema  # type: ignore[import-untyped]

from tollhouse.config.base import ConfigError
from tollhouse.config.tools import ToolScope, ToolsSettings
from tollhouse.tools import calculator, clock, units
from tollhouse.tools.base import Scope, Tool
from tollhouse.tools.http import HttpTools
from tollhouse.tools.loop import ToolLoop
from tollhouse.tools.registry import ToolRegistry

if TYPE_CHECKING:
    from tollhouse.tools.mcp import McpServer

BUILTINS: dict[str, Callable[[], Tool]] = {
    "calculator": calculator.tool,
    "current_time": clock.current_time,
    "convert_time": clock.convert_time,
    "convert_units": units.tool,
}
MCP_START_WAIT_S = 10.0


def _scope(s: ToolScope) -> Scope:
    return Scope(frozenset(s.keys), frozenset(s.teams))


class Tools:
    def __init__(self, cfg: ToolsSettings) -> None:
        try:
            self._build(cfg)
        except (ValueError, jsonschema.exceptions.SchemaError) as exc:  # refused at start, naming the tool
            raise ConfigError(f"tools: {exc}") from None

    def _build(self, cfg: ToolsSettings) -> None:
        self.cfg = cfg
        self.registry = ToolRegistry()
        for name in cfg.builtins:
            tool = BUILTINS[name]()
            if name in cfg.builtin_scope:
                tool.scope = _scope(cfg.builtin_scope[name])
            self.registry.register(tool)
        unknown = sorted(set(cfg.builtin_scope) - set(cfg.builtins))
        if unknown:
            raise ValueError(f"tools.builtin_scope names tools that are not enabled: {unknown}")
        self.http = HttpTools(cfg.http_allowed_hosts, cfg.http_max_response_bytes)
        for h in cfg.http:
            self.registry.register(self.http.tool(h))
        self.mcp: list[McpServer] = []
        if cfg.mcp:  # the MCP client library (~25 MB resident) is loaded only when a server is configured
            from tollhouse.tools.mcp import McpServer

            self.mcp = [McpServer(m, self.registry) for m in cfg.mcp]
        self.loop = ToolLoop(self.registry, cfg)

    async def start(self) -> None:
        for server in self.mcp:
            await server.start(MCP_START_WAIT_S)

    async def aclose(self) -> None:
        for server in self.mcp:
            await server.aclose()
        await self.http.aclose()
