"""The execution loop with a scripted model function: limits, failures the model sees, accounting."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from tollhouse.config.tools import ToolsSettings
from tollhouse.errors import GuardrailBlocked, InvalidRequest
from tollhouse.pipeline.tools import NoTools
from tollhouse.tools.base import Scope, Tool
from tollhouse.tools.calculator import tool as calculator
from tollhouse.tools.loop import ToolLoop
from tollhouse.tools.plan import ToolPlan, loop_estimate
from tollhouse.tools.registry import ToolRegistry
from tollhouse.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    Estimate,
    GuardInput,
    Message,
    Principal,
    Raw,
    RequestContext,
    ToolCall,
    ToolChoice,
    ToolSpec,
    Usage,
)


async def _echo(args: dict[str, Any]) -> str:
    return str(args.get("text", ""))


async def _boom(args: dict[str, Any]) -> str:
    raise RuntimeError("bug in the tool")


async def _sleepy(args: dict[str, Any]) -> str:
    await asyncio.sleep(5)
    return "late"


def _registry() -> ToolRegistry:
    reg = ToolRegistry()
    reg.register(calculator())
    text = {"type": "object", "properties": {"text": {"type": "string"}}}
    reg.register(Tool("echo", "Echo.", text, _echo))
    reg.register(Tool("boom", "Fails.", {"type": "object"}, _boom))
    reg.register(Tool("sleepy", "Slow.", {"type": "object"}, _sleepy, timeout_s=10))
    reg.register(Tool("secret", "Scoped.", {"type": "object"}, _echo, scope=Scope(teams=frozenset({"ops"}))))
    return reg


class Ledger:
    def __init__(self) -> None:
        self.items: list[RequestContext] = []

    def record(self, ctx: RequestContext) -> None:
        self.items.append(ctx)


class Guards:
    """Blocks a tool result that says "attack"; passes the rest."""

    async def check_input(self, ctx: RequestContext, inp: GuardInput) -> list[Message]:
        if "attack" in inp.messages[0].text():
            raise GuardrailBlocked("The request was blocked by the guardrail 'injection' (tool result).")
        return inp.messages


class Model:
    """Answers with the next scripted step: a list of (name, arguments) calls, or text."""

    def __init__(self, steps: list[list[tuple[str, str]] | str]) -> None:
        self.steps = steps
        self.seen: list[ChatRequest] = []

    async def __call__(self, req: ChatRequest) -> ChatResponse:
        self.seen.append(req)
        step = self.steps[min(len(self.seen) - 1, len(self.steps) - 1)]
        if isinstance(step, str):
            msg = Message("assistant", step)
        else:
            calls: list[ToolCall | Raw] = [
                ToolCall(f"c{len(self.seen)}_{i}", n, a) for i, (n, a) in enumerate(step)
            ]
            msg = Message("assistant", None, tool_calls=calls)
        return ChatResponse(
            "id", "m", [Choice(0, msg, "stop" if isinstance(step, str) else "tool_calls")], Usage(7, 3)
        )


def _request(*names: str, **kw: Any) -> ChatRequest:
    tools: list[ToolSpec | Raw] = [Raw({"type": "tollhouse", "name": n}) for n in names]
    return ChatRequest("m", [Message("user", "hi")], tools=tools, **kw)


async def _run(
    steps: list[list[tuple[str, str]] | str],
    *names: str,
    cfg: ToolsSettings | None = None,
    team: str | None = None,
) -> tuple[ChatResponse, RequestContext, Model, Ledger]:
    loop = ToolLoop(_registry(), cfg or ToolsSettings(enabled=True))
    ctx = RequestContext("req1", principal=Principal(key_id="k", team=team))
    req = _request(*names)
    plan = loop.plan(ctx, req)
    assert plan is not None
    model, ledger = Model(steps), Ledger()
    resp = await loop.run(ctx, plan, req, model, Guards(), ledger, None)
    return resp, ctx, model, ledger


def _statuses(ctx: RequestContext) -> list[str]:
    return [u.status for u in ctx.tools_used or ()]


async def test_a_tool_that_raises_is_an_error_the_model_sees() -> None:
    resp, ctx, model, _ = await _run([[("boom", "{}")], "sorry"], "boom")
    assert _statuses(ctx) == ["error"]
    tool_msg = model.seen[1].messages[-1]
    assert orjson.loads(str(tool_msg.content))["error"]["code"] == "tool_error"
    assert resp.choices[0].message.content == "sorry"
    assert resp.usage == Usage(14, 6)


async def test_each_tool_call_is_a_ledger_line_item_and_a_stage() -> None:
    _, ctx, _, ledger = await _run([[("echo", '{"text": "a"}'), ("boom", "{}")], "done"], "echo", "boom")
    assert [(i.endpoint, i.model_requested, i.status, i.error_class) for i in ledger.items] == [
        ("tool", "echo", 200, None),
        ("tool", "boom", 424, "error"),
    ]
    assert ledger.items[0].request_id == "req1-tool1" and ledger.items[0].principal.key_id == "k"
    assert ctx.tool_rounds == 2
    assert {"tools", "tool_model_call"} <= set(ctx.stage_seconds)


class Tracer:
    def __init__(self) -> None:
        self.stages: list[str] = []

    def stage(self, name: str, start: float, end: float) -> None:
        assert end >= start
        self.stages.append(name)

    def provider_call(self, ctx: RequestContext, deployment: str) -> Any:
        raise AssertionError("not called by the loop")


async def test_each_model_call_and_tool_round_is_a_span() -> None:
    loop = ToolLoop(_registry(), ToolsSettings(enabled=True))
    ctx = RequestContext("r", principal=Principal())
    ctx.tracer = tracer = Tracer()
    req = _request("echo")
    plan = loop.plan(ctx, req)
    steps: list[list[tuple[str, str]] | str] = [
        [("echo", '{"text": "1"}')],
        [("echo", '{"text": "2"}')],
        "ok",
    ]
    await loop.run(ctx, plan, req, Model(steps), Guards(), Ledger(), None)
    assert tracer.stages == ["tool_model_call", "tools", "tool_model_call", "tools", "tool_model_call"]


async def test_oversize_results_are_errors() -> None:
    cfg = ToolsSettings(enabled=True, result_max_bytes=64)
    _, ctx, _, _ = await _run([[("echo", orjson.dumps({"text": "x" * 100}).decode())], "ok"], "echo", cfg=cfg)
    assert _statuses(ctx) == ["result_too_large"]


async def test_too_many_calls_in_one_answer() -> None:
    cfg = ToolsSettings(enabled=True, max_calls_per_round=2)
    calls = [("echo", orjson.dumps({"text": str(i)}).decode()) for i in range(3)]
    _, ctx, _, _ = await _run([calls, "ok"], "echo", cfg=cfg)
    assert _statuses(ctx) == ["ok", "ok", "too_many_calls"]


async def test_the_tool_time_budget_bounds_a_slow_tool_and_ends_the_loop() -> None:
    cfg = ToolsSettings(enabled=True, tool_time_budget_s=0.05)
    _, ctx, model, _ = await _run([[("sleepy", "{}")], [("echo", "{}")], "ok"], "sleepy", "echo", cfg=cfg)
    assert _statuses(ctx) == ["timeout"]
    assert model.seen[-1].tool_choice == ToolChoice("none")
    assert len(model.seen) == 2


async def test_max_iterations_and_a_model_that_ignores_tool_choice_none() -> None:
    cfg = ToolsSettings(enabled=True, max_iterations=3)
    steps: list[list[tuple[str, str]] | str] = [
        [("echo", orjson.dumps({"text": str(i)}).decode())] for i in range(5)
    ]
    resp, ctx, model, _ = await _run(steps, "echo", cfg=cfg)
    assert len(model.seen) == 3 and model.seen[-1].tool_choice == ToolChoice("none")
    assert resp.choices[0].message.tool_calls is None and resp.choices[0].finish_reason == "stop"
    assert resp.choices[0].message.content == ""
    assert _statuses(ctx) == ["ok", "ok"]


async def test_a_blocked_tool_result_is_withheld() -> None:
    _, ctx, model, _ = await _run([[("echo", '{"text": "attack now"}')], "ok"], "echo")
    content = orjson.loads(str(model.seen[1].messages[-1].content))
    assert content["error"]["code"] == "blocked_by_guardrail"
    assert ctx.guardrail_blocked is None  # the request itself is not blocked


async def test_permission_follows_the_caller() -> None:
    _, ctx, model, _ = await _run([[("secret", "{}")], "ok"], "secret")
    assert _statuses(ctx) == ["permission_denied"] and model.seen[0].tools is None
    _, ctx, model, _ = await _run([[("secret", '{"text": "hi"}')], "ok"], "secret", team="ops")
    assert _statuses(ctx) == ["ok"]


def test_plan_refusals_and_prompt_listed_tools() -> None:
    loop = ToolLoop(_registry(), ToolsSettings(enabled=True))
    ctx = RequestContext("r")
    with pytest.raises(InvalidRequest, match="Unknown gateway tool 'nope'"):
        loop.plan(ctx, _request("nope"))
    with pytest.raises(InvalidRequest, match="n must be 1"):
        loop.plan(ctx, _request("echo", n=2))
    clash = _request("echo")
    assert clash.tools is not None
    clash.tools.append(ToolSpec("echo"))
    with pytest.raises(InvalidRequest, match="both a function tool"):
        loop.plan(ctx, clash)
    listed = ChatRequest("m", [Message("user", "hi")], extra={"tools": ["calculator"], "top_k": 3})
    plan = loop.plan(ctx, listed)
    assert isinstance(plan, ToolPlan) and list(plan.tools) == ["calculator"]
    assert listed.extra == {"top_k": 3} and listed.tools is not None and listed.tools[0].name == "calculator"  # type: ignore[union-attr]
    assert loop.plan(ctx, ChatRequest("m", [Message("user", "hi")])) is None
    with pytest.raises(InvalidRequest, match="not enabled"):
        NoTools().plan(ctx, _request("calculator"))
    assert NoTools().plan(ctx, ChatRequest("m", [Message("user", "hi")])) is None


def test_the_reservation_covers_the_worst_loop() -> None:
    cfg = ToolsSettings(enabled=True, max_iterations=3, max_calls_per_round=2, result_max_bytes=100)
    est = loop_estimate(cfg, Estimate(50, 20, (("a", 50, 20), ("b", 80, 40))))
    results = 2 * (100 + 16)
    # call k sees the prompt plus k-1 earlier answers and rounds of results: 3p + (0+1+2)(out + results)
    assert est.prompt_tokens == 3 * 50 + 3 * (20 + results)
    assert est.max_output_tokens == 60
    assert est.worst == (("a", 150 + 3 * (20 + results), 60), ("b", 240 + 3 * (40 + results), 120))


def test_a_prompt_version_may_list_gateway_tools() -> None:
    from tollhouse.prompts.drafts import draft_version

    body: dict[str, Any] = {
        "messages": [{"role": "system", "content": "Be exact."}],
        "params": {"tools": ["calculator"]},
    }
    assert draft_version("p", body, None).params == {"tools": ["calculator"]}
    body["params"] = {"tools": "calculator"}
    with pytest.raises(InvalidRequest, match=r"params\.tools"):
        draft_version("p", body, None)
