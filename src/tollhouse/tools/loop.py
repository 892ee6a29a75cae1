"""The execution loop: call the model; when it asks for gateway tools, check each call (permitted, known,
arguments valid against the schema, not a repeat), run them — in parallel when asked in one answer, each
under its timeout, its concurrency limit and what is left of the request's tool-time budget — scan their
results with the input guardrails as untrusted content, append them and call the model again, up to
``max_iterations`` calls (the last one told ``tool_choice: none``).

Every failure is a structured error the model reads (``{"error": {"code", "message"}}``), never a 500.
Arguments that fail the schema are returned for repair once per tool; a second failure, a repeated identical
call or an exhausted budget ends the loop (the next call is the last). An answer that calls one of the
client's own tools goes back to the client as it is, without the gateway's calls in it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

from tollhouse.config.tools import ToolsSettings
from tollhouse.errors import GuardrailBlocked
from tollhouse.tools.base import CALLER, ToolFailure
from tollhouse.tools.plan import ToolPlan, loop_estimate, make_plan
from tollhouse.tools.registry import ToolRegistry
from tollhouse.tools.report import progress_event as _event
from tollhouse.types import (
    ChatRequest,
    ChatResponse,
    Estimate,
    GuardInput,
    Message,
    RequestContext,
    ToolCall,
    ToolChoice,
    ToolUse,
    Usage,
)

log = logging.getLogger("tollhouse.tools")


class Guards(Protocol):
    async def check_input(self, ctx: RequestContext, inp: GuardInput) -> list[Message]: ...


class Records(Protocol):
    def record(self, ctx: RequestContext) -> None: ...


Progress = Callable[[dict[str, Any]], None]


def _error(code: str, message: str) -> str:
    return orjson.dumps({"error": {"code": code, "message": message}}).decode()


def _canonical(arguments: str) -> str:
    try:
        return orjson.dumps(orjson.loads(arguments), option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONDecodeError:
        return arguments


class ToolLoop:
    """The ``ToolRunner`` of ``pipeline/tools.py`` over a ``ToolRegistry``."""

    def __init__(self, registry: ToolRegistry, cfg: ToolsSettings) -> None:
        self.registry = registry
        self.cfg = cfg

    def plan(self, ctx: RequestContext, req: ChatRequest) -> object | None:
        return make_plan(ctx, req, self.registry)

    def estimate(self, plan: object, estimate: Estimate) -> Estimate:
        return loop_estimate(self.cfg, estimate)

    async def run(
        self,
        ctx: RequestContext,
        plan: object,
        req: ChatRequest,
        call: Callable[[ChatRequest], Awaitable[ChatResponse]],
        guards: Guards,
        ledger: Records,
        progress: Progress | None,
    ) -> ChatResponse:
        assert isinstance(plan, ToolPlan)
        cfg = self.cfg
        used: list[ToolUse] = []
        ctx.tools_used = used
        messages = list(req.messages)
        prompt_tokens = completion_tokens = 0
        spent = 0.0  # tool time, against cfg.tool_time_budget_s
        seen: set[tuple[str, str]] = set()
        final = False
        resp: ChatResponse | None = None
        for n in range(1, cfg.max_iterations + 1):
            last = final or n == cfg.max_iterations
            choice = ToolChoice("none") if last else (plan.first_choice if n == 1 else plan.choice_later)
            t0 = time.perf_counter()
            resp = await call(dataclasses.replace(req, messages=messages, tool_choice=choice, stream=False))
            ctx.mark_stage("tool_model_call", t0)
            plan.rounds = ctx.tool_rounds = n
            prompt_tokens += resp.usage.prompt_tokens
            completion_tokens += resp.usage.completion_tokens
            msg = resp.choices[0].message
            calls = [c for c in msg.tool_calls or () if isinstance(c, ToolCall)]
            if not calls or len(calls) != len(msg.tool_calls or ()):
                break  # a plain answer (or calls the gateway cannot read: the client's business)
            if any(c.name in plan.client for c in calls):
                self._client_turn(resp, plan, n, used, progress)
                break
            if last:
                plan.stopped = plan.stopped or "max_iterations"
                self._strip(resp)
                break
            t0 = time.perf_counter()
            budget = cfg.tool_time_budget_s - spent
            if len(calls) == 1:  # the usual case: no task to schedule
                outcomes = [await self._one(ctx, plan, calls[0], 0, seen, budget)]
            else:  # asked for in one answer: run at once
                outcomes = await asyncio.gather(
                    *(self._one(ctx, plan, c, i, seen, budget) for i, c in enumerate(calls))
                )
            spent += ctx.mark_stage("tools", t0) - t0
            results: list[Message] = []
            for c, (status, content, seconds) in zip(calls, outcomes, strict=True):
                use = ToolUse(c.name, c.arguments, status, seconds, content[: cfg.used_result_chars], n)
                used.append(use)
                self._line_item(ctx, use, ledger)
                if progress is not None:
                    progress(_event(use))
                results.append(Message("tool", content, tool_call_id=c.id))
            messages += [msg, *[await self._scan(ctx, guards, m) for m in results]]
            stop = self._stop_reason(plan, outcomes, spent)
            if stop is not None:
                plan.stopped, final = stop, True
        assert resp is not None
        resp.usage = Usage(prompt_tokens, completion_tokens)
        return resp

    # ---- one call ------------------------------------------------------------------------------------------

    async def _one(
        self,
        ctx: RequestContext,
        plan: ToolPlan,
        c: ToolCall,
        i: int,
        seen: set[tuple[str, str]],
        budget: float,
    ) -> tuple[str, str, float]:
        """(status, content for the model, seconds). Never raises but for cancellation."""
        t0 = time.perf_counter()
        try:
            if i >= self.cfg.max_calls_per_round:
                raise ToolFailure(
                    "too_many_calls", f"at most {self.cfg.max_calls_per_round} tool calls per answer"
                )
            tool = plan.tools.get(c.name)
            if tool is None:
                if c.name in plan.hidden or self.registry.get(c.name) is not None:
                    raise ToolFailure("permission_denied", f"this caller may not use the tool '{c.name}'")
                raise ToolFailure(
                    "unknown_tool", f"no tool named '{c.name}'; available: {', '.join(plan.tools)}"
                )
            key = (c.name, _canonical(c.arguments))
            if key in seen:
                raise ToolFailure("repeated_call", "this exact call was already made; its result is above")
            seen.add(key)
            try:
                args = orjson.loads(c.arguments or "{}")
            except orjson.JSONDecodeError:
                raise ToolFailure("invalid_arguments", "arguments are not valid JSON") from None
            tool.check(args)
            if budget <= 0:
                raise ToolFailure("budget_exhausted", "the request's tool time budget is spent")
            limit = min(tool.timeout_s, budget)
            try:
                caller = CALLER.set(ctx.principal)
                try:
                    async with tool.slots, asyncio.timeout(limit):  # no extra task, unlike wait_for
                        result = await tool.run(args)
                finally:
                    CALLER.reset(caller)
            except TimeoutError:
                raise ToolFailure("timeout", f"the tool did not answer within {limit:.3g} s") from None
            if len(result.encode()) > self.cfg.result_max_bytes:
                raise ToolFailure(
                    "result_too_large", f"the result is larger than {self.cfg.result_max_bytes} bytes"
                )
            return "ok", result, time.perf_counter() - t0
        except ToolFailure as f:
            message = f.message
            if f.code == "invalid_arguments" and c.name not in plan.repaired:
                plan.repaired.add(c.name)
                message += "; correct the arguments and call the tool again"
            return f.code, _error(f.code, message), time.perf_counter() - t0
        except Exception as exc:  # a tool's own bug: the model is told, the operator gets the traceback
            log.exception("tool failed", extra={"tool": c.name, "request_id": ctx.request_id})
            return (
                "error",
                _error("tool_error", f"the tool failed ({type(exc).__name__})"),
                time.perf_counter() - t0,
            )

    def _stop_reason(
        self, plan: ToolPlan, outcomes: list[tuple[str, str, float]], spent: float
    ) -> str | None:
        codes = {status for status, _, _ in outcomes}
        if "repeated_call" in codes:
            return "repeated_call"
        if "budget_exhausted" in codes or spent >= self.cfg.tool_time_budget_s:
            return "tool_time_budget"
        if "invalid_arguments" in codes and any(
            status == "invalid_arguments" and "correct the arguments" not in content
            for status, content, _ in outcomes
        ):
            return "invalid_arguments"  # the second failure of a tool already given its repair chance
        return None

    # ---- guardrails, accounting ---------------------------------------------------------------------------

    async def _scan(self, ctx: RequestContext, guards: Guards, msg: Message) -> Message:
        """A tool result through the input guardrails as untrusted content (the injection guardrail's
        document model): redacted or wrapped as they decide; a block withholds the result from the model."""
        state, blocked = ctx.guard_state, ctx.guardrail_blocked
        try:
            out = await guards.check_input(ctx, GuardInput([msg]))
        except GuardrailBlocked as exc:
            ctx.guardrail_blocked = blocked
            return Message("tool", _error("blocked_by_guardrail", str(exc)), tool_call_id=msg.tool_call_id)
        finally:
            if state is not None and ctx.guard_state is not state:
                if ctx.guard_state is not None:  # keep the PII mapping of the request and add the tool's
                    state.mapping.update(ctx.guard_state.mapping)
                ctx.guard_state = state
        return out[0]

    def _line_item(self, ctx: RequestContext, use: ToolUse, ledger: Records) -> None:
        """One ledger record per tool call (endpoint ``tool``, no tokens, no cost), beside the request's."""
        item = RequestContext(
            f"{ctx.request_id}-tool{len(ctx.tools_used or ())}",
            ctx.ingress,
            "tool",
            started=time.perf_counter() - use.duration_s,
            principal=ctx.principal,
        )
        item.model_requested = item.model_served = use.name
        if use.status != "ok":
            item.status, item.error_class = 424, use.status  # the dependency (the tool) failed
        item.recorded = True
        ledger.record(item)

    # ---- answers that end the loop ------------------------------------------------------------------------

    def _client_turn(
        self, resp: ChatResponse, plan: ToolPlan, n: int, used: list[ToolUse], progress: Progress | None
    ) -> None:
        """The model called a client tool: the client gets the answer with its own calls only."""
        msg = resp.choices[0].message
        mine = [c for c in msg.tool_calls or () if isinstance(c, ToolCall) and c.name in plan.client]
        for c in msg.tool_calls or ():
            if isinstance(c, ToolCall) and c.name not in plan.client:
                use = ToolUse(c.name, c.arguments, "skipped", 0.0, "", n)
                used.append(use)
                if progress is not None:
                    progress(_event(use))
        msg.tool_calls = list(mine)

    def _strip(self, resp: ChatResponse) -> None:
        """The last call still asked for tools: answer with what text there is."""
        choice = resp.choices[0]
        choice.message.tool_calls = None
        if choice.message.content is None:
            choice.message.content = ""
        choice.finish_reason = "stop"
