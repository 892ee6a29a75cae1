"""The internal vocabulary: every ``RequestContext`` slot has a real type, and requests are slotted."""

from __future__ import annotations

import re
from dataclasses import fields

from tollhouse.types import CachePlan, ChatRequest, GuardState, Message, RequestContext, ToolCall


def test_request_context_has_no_loosely_typed_slots() -> None:
    loose = [f.name for f in fields(RequestContext) if re.search(r"\b(object|Any)\b", str(f.type))]
    assert loose == []


def test_stage_slots_hold_their_stage_state() -> None:
    ctx = RequestContext(request_id="r")
    ctx.cache_plan = CachePlan("anon", "m", "k", 60.0, store=True)
    ctx.guard_state = GuardState({"<EMAIL_ADDRESS_1>": "a@b.io"})
    assert ctx.cache_plan.context is None and ctx.guard_state.schema is None


def test_hot_path_types_are_slotted() -> None:
    for cls in (RequestContext, ChatRequest, Message, ToolCall):
        assert "__slots__" in vars(cls)
