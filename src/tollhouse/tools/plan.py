"""Which gateway tools a chat request uses, and what the whole loop may cost.

A request opts in with ``{"type": "tollhouse", "name": …}`` entries in ``tools``, with a ``tool_choice``
naming a registered tool, or through a stored prompt version whose ``params.tools`` lists them. The tools the
caller may use are shown to the model as function tools beside the client's own; the ones it may not use are
not shown (a call to one is answered ``permission_denied``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tollhouse.config.tools import ToolsSettings
from tollhouse.errors import InvalidRequest
from tollhouse.tools.base import Tool
from tollhouse.tools.registry import ToolRegistry
from tollhouse.types import ChatRequest, Estimate, Raw, RequestContext, ToolChoice, ToolSpec

TOOL_MESSAGE_TOKENS = 16  # a tool message's own tokens (role, id, framing), beyond its content


@dataclass(slots=True)
class ToolPlan:
    tools: dict[str, Tool]  # gateway tools shown to the model
    hidden: set[str]  # named by the request but not permitted to the caller
    client: set[str]  # the client's own function tools (returned to the client when called)
    first_choice: ToolChoice | Raw | None  # the request's tool_choice, for the first model call only
    choice_later: ToolChoice | Raw | None = None  # for later calls (a forced tool is forced once)
    stopped: str | None = None
    rounds: int = 0
    repaired: set[str] = field(default_factory=set)


def _requested(req: ChatRequest, registry: ToolRegistry) -> tuple[list[str], list[ToolSpec | Raw]]:
    """The gateway tool names the request asks for, and its other tools (kept as sent)."""
    wanted: list[str] = []
    kept: list[ToolSpec | Raw] = []
    for i, t in enumerate(req.tools or []):
        if isinstance(t, Raw) and isinstance(t.value, dict) and t.value.get("type") == "tollhouse":
            name = t.value.get("name")
            if not isinstance(name, str) or not name:
                raise InvalidRequest(
                    f"tools.{i}: a tollhouse tool needs a string 'name'.", param=f"tools.{i}.name"
                )
            wanted.append(name)
        else:
            kept.append(t)
    listed = req.extra.get("tools")
    if listed is not None:
        extra = dict(req.extra)
        del extra["tools"]  # a stored prompt's list: never relayed upstream
        req.extra = extra
        if isinstance(listed, list):
            wanted += [n for n in listed if isinstance(n, str)]
    choice = req.tool_choice
    client = {t.name for t in kept if isinstance(t, ToolSpec)}
    if (
        isinstance(choice, ToolChoice)
        and choice.mode == "tool"
        and choice.name is not None
        and choice.name not in client
        and registry.get(choice.name) is not None
    ):
        wanted.append(choice.name)
    return list(dict.fromkeys(wanted)), kept


def make_plan(ctx: RequestContext, req: ChatRequest, registry: ToolRegistry) -> ToolPlan | None:
    if req.tools is None and req.tool_choice is None and "tools" not in req.extra:
        return None
    wanted, kept = _requested(req, registry)
    if not wanted:
        return None
    unknown = [n for n in wanted if registry.get(n) is None]
    if unknown:
        raise InvalidRequest(
            f"Unknown gateway tool '{unknown[0]}'. Available: {', '.join(registry.names()) or 'none'}.",
            param="tools",
            code="unknown_tool",
        )
    if req.n > 1:
        raise InvalidRequest("Gateway tools answer one choice: n must be 1.", param="n")
    client = {t.name for t in kept if isinstance(t, ToolSpec)}
    clash = sorted(client.intersection(wanted))
    if clash:
        raise InvalidRequest(
            f"'{clash[0]}' is both a function tool of the request and a gateway tool.", param="tools"
        )
    tools: dict[str, Tool] = {}
    hidden: set[str] = set()
    for name in wanted:
        tool = registry.get(name)
        assert tool is not None
        if tool.scope.allows(ctx.principal):
            tools[name] = tool
        else:
            hidden.add(name)
    req.tools = [*kept, *(ToolSpec(t.name, t.description, t.parameters) for t in tools.values())] or None
    choice = req.tool_choice
    if isinstance(choice, ToolChoice) and choice.mode == "tool" and choice.name in hidden:
        choice = req.tool_choice = None  # a tool the caller may not use is not forced either
    forced = isinstance(choice, ToolChoice) and choice.mode in ("tool", "required")
    later = ToolChoice("auto") if forced else choice
    return ToolPlan(tools, hidden, client, choice, later)


def loop_estimate(cfg: ToolsSettings, est: Estimate) -> Estimate:
    """The worst case of ``max_iterations`` calls: call k sees the prompt, plus every earlier answer (at its
    output cap) and every earlier round's tool results (``max_calls_per_round`` results at
    ``result_max_bytes``, a token never shorter than a byte)."""
    n = cfg.max_iterations
    results = cfg.max_calls_per_round * (cfg.result_max_bytes + TOOL_MESSAGE_TOKENS)
    growth = n * (n - 1) // 2

    def prompt(p: int, out: int) -> int:
        return n * p + growth * (out + results)

    worst = tuple((dep, prompt(p, out), n * out) for dep, p, out in est.worst)
    return Estimate(prompt(est.prompt_tokens, est.max_output_tokens), n * est.max_output_tokens, worst)
