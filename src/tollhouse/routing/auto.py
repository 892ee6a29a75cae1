"""Automatic routing: classify a request into a tier (simple / standard / complex / code) from cheap
signals — prompt length, tools, code, multi-step markers, task words — and serve it from that tier's model.
Optionally cascade: answer from the cheaper tier and escalate when a check on the answer fails.
The decision and its reason go to ``ctx.route`` (access log, ``x-tollhouse-route`` header)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from tollhouse.routing.group import Group, Selector
from tollhouse.settings import AutoRouterConfig
from tollhouse.types import ChatRequest, ChatResponse, CompletionRequest, RequestContext

TIERS = ("simple", "standard", "complex")
_CODE = re.compile(
    r"```|^\s*(def|class|import|from|function|const|let|var|public|fn|func|#include|SELECT|CREATE)\b"
    r"|[;{}]\s*$|=>|\bTraceback\b",
    re.MULTILINE,
)
_MULTI_STEP = re.compile(
    r"\bstep[- ]by[- ]step\b|\bfirst\b.*\bthen\b|^\s*\d+[.)]\s|\bplan\b|\bprove\b|\bderive\b|\banaly[sz]e\b"
    r"|\bcompare\b|\btrade-?offs?\b|\bdesign\b|\bdebug\b|\bwhy\b.*\bbecause\b",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)
_SIMPLE_TASK = re.compile(
    r"^\s*(translate|summari[sz]e|classify|extract|fix the spelling|rewrite|rephrase|define"
    r"|what is|who is)\b",
    re.IGNORECASE,
)
_REFUSAL = re.compile(
    r"^\s*(i'?m sorry,? but|i can(no|')t (help|assist|do)|i am (unable|not able) to|as an ai\b)",
    re.IGNORECASE,
)


def classify(cfg: AutoRouterConfig, text: str, tools: bool) -> tuple[str, str]:
    """(tier, reason) for a request whose prompt is ``text``. Cheap: a few regex scans of the prompt."""
    n = len(text)
    if tools:
        return "complex" if n >= cfg.long_chars else "standard", "tools present"
    if _CODE.search(text):
        return ("code" if cfg.code else "complex"), "code"
    if n >= cfg.long_chars:
        return "complex", f"long prompt ({n} chars)"
    if _MULTI_STEP.search(text):
        return "complex", "multi-step markers"
    if _SIMPLE_TASK.search(text):
        return "simple", "simple task"
    if n < cfg.short_chars:
        return "simple", f"short prompt ({n} chars)"
    return "standard", f"medium prompt ({n} chars)"


class AutoRouter:
    """One configured automatic router. Tier names resolve to groups once, at start-up."""

    def __init__(self, cfg: AutoRouterConfig, groups: dict[str, Group]) -> None:
        self.cfg = cfg
        self.tier_groups = [_plain(groups[name]) for name in (cfg.simple, cfg.standard, cfg.complex)]
        self.code_group = _plain(groups[cfg.code]) if cfg.code else None

    def select(self, ctx: RequestContext, req: ChatRequest | CompletionRequest | None) -> Group:
        if isinstance(req, ChatRequest):
            text = "\n".join(m.text() for m in req.messages if m.role != "assistant")
            tools = bool(req.tools)
        else:
            text, tools = (req.prompt if req is not None else ""), False
        tier, reason = classify(self.cfg, text, tools)
        ctx.route = f"{self.cfg.name}: tier={tier}; reason={reason}"
        if tier == "code" and self.code_group is not None:
            return self.code_group
        return self.tier_groups[TIERS.index(tier)]

    def escalation(self, group: Group) -> Group | None:
        """The next tier up from ``group``, when cascading."""
        if not self.cfg.cascade:
            return None
        # Tiers may name the same group: escalate past every tier served by ``group``, never back to it.
        last = max((i for i, g in enumerate(self.tier_groups) if g is group), default=None)
        if last is None:
            return None
        return next((g for g in self.tier_groups[last + 1 :] if g is not group), None)


def failed_check(cfg: AutoRouterConfig, req: ChatRequest, resp: ChatResponse) -> str | None:
    """The first cascade check the answer fails, or None when it passes."""
    msg = resp.choices[0].message if resp.choices else None
    text = msg.text() if msg is not None else ""
    if "empty" in cfg.checks and not text.strip() and not (msg and msg.tool_calls):
        return "empty"
    if "refusal" in cfg.checks and _REFUSAL.match(text):
        return "refusal"
    rf = req.response_format
    wants_json = rf is not None and rf.type in ("json_object", "json_schema")
    if "invalid_json" in cfg.checks and wants_json:
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError:
            return "invalid_json"
    return None


async def cascade(
    ctx: RequestContext,
    auto: Selector,
    group: Group,
    req: ChatRequest,
    call: Callable[[Group], Awaitable[ChatResponse]],
) -> ChatResponse:
    """Call ``group``; while the answer fails a check and a higher tier exists, escalate. Usage is summed
    over every tier called, since every call is paid for."""
    resp = await call(group)
    prompt = completion = 0
    while (nxt := auto.escalation(group)) is not None and (why := failed_check(auto.cfg, req, resp)):
        prompt += resp.usage.prompt_tokens
        completion += resp.usage.completion_tokens
        ctx.route = f"{ctx.route}; escalated={why}"
        group = nxt
        resp = await call(group)
    resp.usage.prompt_tokens += prompt
    resp.usage.completion_tokens += completion
    return resp


def _plain(group: Any) -> Group:
    # A tier naming another automatic router uses that router's top tier.
    g: Group = group.auto.tier_groups[-1] if group.auto is not None else group
    return g
