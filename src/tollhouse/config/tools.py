"""The `tools:` section: tools the gateway runs itself (built-ins, HTTP tools, MCP servers) and the
loop's limits."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tollhouse.config.base import Strict

Builtin = Literal["calculator", "current_time", "convert_time", "convert_units"]
BUILTINS: tuple[Builtin, ...] = ("calculator", "current_time", "convert_time", "convert_units")


class ToolScope(Strict):
    """Who may use a tool: keys by id and teams by name. Both empty: every caller."""

    keys: list[str] = Field(default_factory=list, description="Key ids allowed to use the tool.")
    teams: list[str] = Field(default_factory=list, description="Teams allowed to use the tool.")


class HttpToolConfig(Strict):
    """A tool that answers by one HTTP request built from its arguments."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The tool's name, as the model sees it.")
    description: str = Field(description="What the tool does, for the model.")
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON schema of the arguments.",
    )
    method: Literal["GET", "POST"] = Field(
        "GET", description="GET: arguments in the URL; POST: as a JSON body."
    )
    url: str = Field(description="URL template; `{name}` is replaced by the URL-encoded argument `name`.")
    headers_env: dict[str, str] = Field(
        default_factory=dict, description="Header name → name of the environment variable holding its value."
    )
    response_path: str | None = Field(
        None, description="JSONPath subset (`$.a.b[0]`) selecting the part of the JSON answer the model sees."
    )
    timeout_s: float = Field(10.0, gt=0, description="Time allowed per call.")
    concurrency: int = Field(8, ge=1, description="Calls in flight at once (per process).")
    scope: ToolScope = Field(default_factory=ToolScope, description="Who may use it.")


class McpServerConfig(Strict):
    """An MCP server whose tools the gateway offers, as `<name>__<tool>`."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="Namespace of the server's tools.")
    transport: Literal["stdio", "http"] = Field(
        description="`stdio` (a subprocess) or `http` (streamable HTTP)."
    )
    command: str | None = Field(None, description="Program to start (`stdio`).")
    args: list[str] = Field(default_factory=list, description="Its arguments (`stdio`).")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment for the subprocess.")
    url: str | None = Field(None, description="The server's endpoint (`http`), e.g. http://host:8000/mcp.")
    timeout_s: float = Field(15.0, gt=0, description="Time allowed per tool call.")
    concurrency: int = Field(4, ge=1, description="Calls in flight at once to this server's tools.")
    refresh_s: float = Field(
        30.0, gt=0, description="How often the tool list is read again (besides change notifications)."
    )
    scope: ToolScope = Field(default_factory=ToolScope, description="Who may use its tools.")


class ToolsSettings(Strict):
    """Server-side tools (docs/TOOLS.md)."""

    enabled: bool = Field(False, description='Run tools in the gateway (`{"type": "tollhouse"}` tools).')
    builtins: list[Builtin] = Field(
        default_factory=lambda: list(BUILTINS),
        description="Built-in tools offered.",
    )
    builtin_scope: dict[str, ToolScope] = Field(
        default_factory=dict, description="Scope per built-in tool (default: every caller)."
    )
    retrieve: bool = Field(
        True,
        description="With `rag.enabled`, offer the `retrieve` tool: the model searches the caller's own "
        "collections (docs/RETRIEVAL.md).",
    )
    http: list[HttpToolConfig] = Field(default_factory=list, description="HTTP tools.")
    http_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts HTTP tools may reach (exact names, with `:port` if not 80/443).",
    )
    http_max_response_bytes: int = Field(262_144, ge=1, description="An HTTP tool answer larger is an error.")
    mcp: list[McpServerConfig] = Field(default_factory=list, description="MCP servers.")
    max_iterations: int = Field(4, ge=1, le=16, description="Model calls per request, the last one included.")
    max_calls_per_round: int = Field(
        4, ge=1, le=32, description="Tool calls run per model answer; more: errors."
    )
    tool_time_budget_s: float = Field(30.0, gt=0, description="Total tool time per request.")
    result_max_bytes: int = Field(
        8192, ge=64, description="A tool result longer than this (UTF-8) is an error the model sees."
    )
    used_result_chars: int = Field(500, ge=0, description="Characters of each result shown in `tools_used`.")
