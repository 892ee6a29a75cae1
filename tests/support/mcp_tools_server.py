"""A small MCP server for the tools tests, written with the official ``mcp`` package.

``python tests/support/mcp_tools_server.py stdio`` serves over stdin/stdout (the gateway starts it as a
subprocess); ``… http PORT`` serves streamable HTTP at ``http://127.0.0.1:PORT/mcp`` (prints ``READY <url>``).
Tools: ``shout``, ``add`` and ``unlock``, which adds ``secret_word`` and tells the client its list changed.
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("tollhouse-test-tools")


@server.tool()
def shout(text: str) -> str:
    """Return the text in capitals."""
    return text.upper() + "!"


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def secret_word() -> str:
    """The secret word (only after unlock)."""
    return "swordfish"


@server.tool()
async def unlock(ctx: Context) -> str:
    """Make the secret_word tool available."""
    server.add_tool(secret_word)
    await ctx.session.send_tool_list_changed()
    return "unlocked"


def main() -> None:
    if sys.argv[1] == "stdio":
        server.run("stdio")
        return
    port = int(sys.argv[2])
    print(f"READY http://127.0.0.1:{port}", flush=True)
    server.run("streamable-http", host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()
