"""Server-side tools: the registry, the built-ins, HTTP tools, MCP servers and the execution loop
(docs/TOOLS.md)."""
