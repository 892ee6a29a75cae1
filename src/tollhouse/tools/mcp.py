"""MCP servers (Model Context Protocol, the official ``mcp`` package) over stdio or streamable HTTP. Each
server is held open by one background task: its tools are listed at start, again when it says its list changed
(``notifications/tools/list_changed``) and every ``refresh_s``, and registered as ``<server>__<tool>``
with the server's scope. A server that fails is retried with backoff; its tools vanish until it is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

import mcp_types
import orjson
from mcp import Client, StdioServerParameters
from mcp.client.stdio import get_default_environment

from tollhouse.config.tools import McpServerConfig
from tollhouse.tools.base import Scope, Tool, ToolFailure
from tollhouse.tools.registry import ToolRegistry

log = logging.getLogger("tollhouse.tools.mcp")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def namespaced(server: str, tool: str) -> str:
    return f"{server}__{_UNSAFE.sub('_', tool)}"[:64]


def result_text(result: mcp_types.CallToolResult) -> str:
    parts: list[str] = []
    for block in result.content:
        text = getattr(block, "text", None)
        parts.append(text if isinstance(text, str) else block.model_dump_json(exclude_none=True))
    if not parts and result.structured_content is not None:
        parts.append(orjson.dumps(result.structured_content).decode())
    return "\n".join(parts)


class McpServer:
    def __init__(self, cfg: McpServerConfig, registry: ToolRegistry) -> None:
        if cfg.transport == "stdio" and not cfg.command:
            raise ValueError(f"MCP server '{cfg.name}': `command` is required for stdio")
        if cfg.transport == "http" and not cfg.url:
            raise ValueError(f"MCP server '{cfg.name}': `url` is required for http")
        self.cfg = cfg
        self.registry = registry
        self.source = f"mcp:{cfg.name}"
        self.scope = Scope(frozenset(cfg.scope.keys), frozenset(cfg.scope.teams))
        self._client: Client | None = None
        self._changed = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(cfg.concurrency)  # shared by all of this server's tools
        self.listings = 0  # tool lists read (start, changes, refreshes)

    async def start(self, wait_s: float) -> None:
        """Connect in the background; wait up to ``wait_s`` for the first tool list (a server that is slow
        or down does not stop the gateway: its tools appear when it answers)."""
        self._task = asyncio.create_task(self._run(), name=f"tollhouse-mcp-{self.cfg.name}")
        try:
            await asyncio.wait_for(self._ready.wait(), wait_s)
        except TimeoutError:
            log.warning(
                "MCP server not ready yet; its tools come when it is", extra={"server": self.cfg.name}
            )

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.registry.replace(self.source, [])

    def _target(self) -> StdioServerParameters | str:
        if self.cfg.transport == "http":
            assert self.cfg.url is not None
            return self.cfg.url
        assert self.cfg.command is not None
        env = {**get_default_environment(), **self.cfg.env}
        return StdioServerParameters(command=self.cfg.command, args=self.cfg.args, env=env)

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            log.warning("MCP transport error", extra={"server": self.cfg.name, "error": str(message)})
            return
        if getattr(getattr(message, "root", message), "method", None) == "notifications/tools/list_changed":
            self._changed.set()

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                async with Client(
                    self._target(), mode="legacy", message_handler=self._on_message, cache=None
                ) as client:
                    self._client = client
                    await self._refresh(client)
                    self._ready.set()
                    delay = 0.5
                    while True:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._changed.wait(), self.cfg.refresh_s)
                        self._changed.clear()
                        await self._refresh(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "MCP server failed; retrying", extra={"server": self.cfg.name, "error": repr(exc)}
                )
            finally:
                self._client = None
            self.registry.replace(self.source, [])
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _refresh(self, client: Client) -> None:
        tools: list[Tool] = []
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor)
            for t in page.tools:
                tools.append(self._tool(t))
            cursor = page.next_cursor
            if cursor is None:
                break
        self.registry.replace(self.source, tools)
        self.listings += 1
        log.info("MCP tools listed", extra={"server": self.cfg.name, "tools": [t.name for t in tools]})

    def _tool(self, spec: mcp_types.Tool) -> Tool:
        remote = spec.name

        async def run(args: dict[str, Any]) -> str:
            client = self._client
            if client is None:
                raise ToolFailure("unavailable", f"MCP server '{self.cfg.name}' is not connected")
            result = await client.call_tool(remote, args)
            text = result_text(result)
            if result.is_error:
                raise ToolFailure("tool_error", text or "the tool reported an error")
            return text

        tool = Tool(
            namespaced(self.cfg.name, remote),
            spec.description or remote,
            spec.input_schema or _EMPTY_SCHEMA,
            run,
            timeout_s=self.cfg.timeout_s,
            concurrency=self.cfg.concurrency,
            scope=self.scope,
            source=self.source,
        )
        tool._slots = self._slots
        return tool
