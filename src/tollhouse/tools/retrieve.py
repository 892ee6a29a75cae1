"""The ``retrieve`` tool: the model searches the caller's document collections (docs/RETRIEVAL.md) itself,
when it decides it needs to, instead of the request naming a collection up front. The caller's tenant
comes from the key running the request, so a model can only ever read its caller's collections."""

from __future__ import annotations

from typing import Any

from tollhouse.errors import InvalidRequest, NotFound
from tollhouse.rag.service import Retrieval, tenant_of
from tollhouse.tools.base import CALLER, Tool, ToolFailure

MAX_K = 10


def retrieve_tool(rag: Retrieval) -> Tool:
    async def run(args: dict[str, Any]) -> str:
        tenant = tenant_of(CALLER.get())
        name = args["collection"]
        try:
            hits = await rag.search(name, args["query"], int(args.get("k", 5)), tenant=tenant)
        except NotFound:
            names = [c.name for c in await rag.collections(tenant)]
            listed = ", ".join(names) if names else "none"
            raise ToolFailure(
                "not_found", f"no collection named '{name}'; this caller has: {listed}"
            ) from None
        except InvalidRequest as exc:
            raise ToolFailure("invalid_arguments", exc.message) from None
        if not hits:
            return f"No passage of '{name}' matches the query."
        return "\n\n".join(
            f"[{i}] document {h.chunk.document_id}, chunk {h.chunk.index}"
            + (f" ({h.chunk.heading})" if h.chunk.heading else "")
            + f":\n{h.chunk.text}"
            for i, h in enumerate(hits, 1)
        )

    return Tool(
        "retrieve",
        "Search the caller's document collections and return the most relevant passages, each with its "
        "document id. Use it for questions about the team's own documents.",
        {
            "type": "object",
            "properties": {
                "collection": {"type": "string", "description": "The collection to search.", "maxLength": 64},
                "query": {
                    "type": "string",
                    "description": "What to look for.",
                    "minLength": 1,
                    "maxLength": 2000,
                },
                "k": {"type": "integer", "description": "How many passages.", "minimum": 1, "maximum": MAX_K},
            },
            "required": ["collection", "query"],
            "additionalProperties": False,
        },
        run,
        timeout_s=10.0,
        concurrency=8,
        source="rag",
    )
