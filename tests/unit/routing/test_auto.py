"""Automatic routing: the classifier's tiers and reasons, the router's choice, cascading on failed checks."""

from __future__ import annotations

import pytest
from tests.support.routing_kit import Kit

from tollhouse.routing.auto import classify
from tollhouse.settings import AutoRouterConfig
from tollhouse.types import ResponseFormat

CFG = AutoRouterConfig(simple="s", standard="m", complex="l", code="c", short_chars=100, long_chars=2000)


@pytest.mark.parametrize(
    ("text", "tools", "tier", "reason"),
    [
        ("What time zone is Paris in?", False, "simple", "short prompt"),
        ("Translate this paragraph to German: " + "word " * 40, False, "simple", "simple task"),
        ("Tell me about the history of the harbour. " * 5, False, "standard", "medium prompt"),
        ("x" * 2500, False, "complex", "long prompt"),
        ("Think step by step: how many weighings do we need?", False, "complex", "multi-step markers"),
        ("1. Install it\n2. Configure it\nWhat breaks?", False, "complex", "multi-step markers"),
        ("Why does this fail?\n```python\nprint(1/0)\n```", False, "code", "code"),
        ("Book me a table for two", True, "standard", "tools present"),
    ],
)
def test_classifier(text: str, tools: bool, tier: str, reason: str) -> None:
    got_tier, got_reason = classify(CFG, text, tools)
    assert (got_tier, got_reason.split(" (")[0]) == (tier, reason)


def test_code_without_a_code_tier_goes_to_complex() -> None:
    cfg = CFG.model_copy(update={"code": None})
    assert classify(cfg, "def f():\n    return 1", False)[0] == "complex"


AUTO = {"name": "auto", "simple": "small", "standard": "medium", "complex": "large"}


async def test_auto_routes_by_tier_and_records_the_reason() -> None:
    kit = Kit({"small": {}, "medium": {}, "large": {}}, {"auto": [AUTO]})
    text, ctx = await kit.chat("auto", "hi")
    assert text == "from small" and ctx.route == "auto: tier=simple; reason=short prompt (2 chars)"
    text, ctx = await kit.chat("auto", "Plan a migration step by step")
    assert text == "from large" and ctx.route is not None and "multi-step" in ctx.route
    words, ctx = await kit.stream("auto", "hi")
    assert "".join(words) == "from small"


async def test_cascade_escalates_when_a_check_fails_and_sums_usage() -> None:
    kit = Kit(
        {"small": {"reply": ""}, "medium": {"reply": "I'm sorry, but I cannot do that"}, "large": {}},
        {"auto": [{**AUTO, "cascade": True}]},
    )
    ctx_text, ctx = await kit.chat("auto", "hi there")
    assert ctx_text == "from large" and ctx.deployment == "large"
    assert ctx.route is not None and ctx.route.endswith("escalated=empty; escalated=refusal")
    assert ctx.usage is not None and ctx.usage.prompt_tokens == 3 * 2  # three calls paid for


async def test_cascade_checks_json_when_json_was_asked_for() -> None:
    kit = Kit(
        {"small": {"reply": "not json"}, "medium": {"reply": '{"ok": true}'}, "large": {}},
        {"auto": [{**AUTO, "cascade": True}]},
    )
    text, ctx = await kit.chat("auto", "hi", response_format=ResponseFormat("json_object"))
    assert text == '{"ok": true}' and ctx.route is not None and "escalated=invalid_json" in ctx.route
    text, ctx = await kit.chat("auto", "hi")  # no JSON asked: "not json" is a fine answer
    assert text == "not json"


async def test_cascade_over_tiers_sharing_a_group_ends() -> None:
    # simple and standard name one group: escalation skips to the next distinct group and ends at the top.
    kit = Kit(
        {"small": {"reply": ""}, "large": {"reply": ""}},
        {"auto": [{**AUTO, "standard": "small", "cascade": True}]},
    )
    text, ctx = await kit.chat("auto", "hi there")
    assert text == "" and ctx.deployment == "large"
    assert ctx.route is not None
    assert ctx.route.endswith("tier=simple; reason=short prompt (8 chars); escalated=empty")
