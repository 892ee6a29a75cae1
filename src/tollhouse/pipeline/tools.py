"""Tools seam: server-side tools (``tools/``). ``plan`` decides, before admission, whether a chat request uses
gateway tools (and rewrites its tool list for the model); ``run`` drives the model ⇄ tools loop. ``NoTools``
(tools off) answers nothing and refuses a request that names a gateway tool with a 400.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from tollhouse.errors import InvalidRequest
from tollhouse.pipeline.guard import GuardChain
from tollhouse.pipeline.ledger import Ledger
from tollhouse.types import ChatRequest, ChatResponse, Estimate, Raw, RequestContext

# A progress event for a stream (a JSON-able dict), or None when the request is not streamed.
Progress = Callable[[dict[str, Any]], None]


class ToolRunner(Protocol):
    def plan(self, ctx: RequestContext, req: ChatRequest) -> object | None:
        """None when the request uses no gateway tool (costs one test when it has no tools at all). Else
        the plan, with ``req.tools`` rewritten: gateway tools as function definitions. Raises
        ``InvalidRequest`` for an unknown gateway tool or a request the loop cannot serve (``n`` > 1)."""
        ...

    def estimate(self, plan: object, estimate: Estimate) -> Estimate:
        """The estimate for the whole loop: the worst case of ``max_iterations`` model calls."""
        ...

    async def run(
        self,
        ctx: RequestContext,
        plan: object,
        req: ChatRequest,
        call: Callable[[ChatRequest], Awaitable[ChatResponse]],
        guards: GuardChain,
        ledger: Ledger,
        progress: Progress | None,
    ) -> ChatResponse:
        """Call the model, run the gateway tools it asks for, and call it again until it answers without
        them (or a limit stops the loop). The answer's usage is the sum of every call's."""
        ...


def names_gateway_tool(req: ChatRequest) -> bool:
    """The request names a gateway tool: a ``{"type": "tollhouse"}`` tool, or a stored prompt's ``tools``."""
    if "tools" in req.extra:
        return True
    return req.tools is not None and any(
        isinstance(t, Raw) and isinstance(t.value, dict) and t.value.get("type") == "tollhouse"
        for t in req.tools
    )


class NoTools:
    def plan(self, ctx: RequestContext, req: ChatRequest) -> object | None:
        if names_gateway_tool(req):
            raise InvalidRequest(
                "Server-side tools are not enabled on this gateway (tools.enabled).", param="tools"
            )
        return None

    def estimate(self, plan: object, estimate: Estimate) -> Estimate:
        return estimate

    async def run(
        self,
        ctx: RequestContext,
        plan: object,
        req: ChatRequest,
        call: Callable[[ChatRequest], Awaitable[ChatResponse]],
        guards: GuardChain,
        ledger: Ledger,
        progress: Progress | None,
    ) -> ChatResponse:
        return await call(req)
