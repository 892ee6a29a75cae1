"""The budget guarantee under concurrency: spend never passes a budget by more than one request's worst case,
whatever the request ends up costing — a pricier fallback, a cascade, a prompt that bills more tokens than
its characters suggest (docs/adr/0007-reservations.md)."""

from __future__ import annotations

import asyncio
from typing import Any

from tollhouse.access.budget import BudgetLimiter
from tollhouse.config.access import BudgetsSettings
from tollhouse.errors import BudgetExceeded
from tollhouse.gateway import Gateway
from tollhouse.ledger.usage import CostLedger
from tollhouse.operations import CHAT
from tollhouse.pricing import PriceBook
from tollhouse.providers.registry import ModelRegistry
from tollhouse.routing.router import Router
from tollhouse.settings import MockModel, RoutingSettings
from tollhouse.stores.memory import MemoryBudgetStore
from tollhouse.types import ChatRequest, Estimate, KeyLimits, Message, Principal, RequestContext

REPLY = "one two three four five six seven eight nine ten"  # 10 tokens: the whole max_tokens
REFUSAL = "I'm sorry, but I cannot help with that one at all"


async def _gateway(models: list[dict[str, Any]], routing: dict[str, Any] | None = None) -> Gateway:
    configs = [MockModel.model_validate({"provider": "mock", **m}) for m in models]
    registry = await ModelRegistry.build(configs)
    prices = PriceBook(configs)
    limiter = BudgetLimiter(MemoryBudgetStore(), BudgetsSettings(), prices)
    router = Router(registry, RoutingSettings.model_validate(routing or {}))
    return Gateway(registry=registry, limiter=limiter, router=router, ledger=CostLedger(prices))


async def _spend(gw: Gateway, budget: float, content: str, model: str, n: int = 100, **kw: Any) -> float:
    """Fire ``n`` concurrent requests on a key with a daily budget; what the answered ones cost."""
    principal = Principal(key_id="k", anonymous=False, limits=KeyLimits(daily_usd=budget))

    async def one(i: int) -> float:
        ctx = RequestContext(request_id=f"r{i}", principal=principal)
        req = ChatRequest(model=model, messages=[Message("user", content)], **kw)
        try:
            await gw.handle(ctx, CHAT, req)
        except BudgetExceeded:
            return 0.0
        assert ctx.cost_usd is not None
        return ctx.cost_usd

    costs = await asyncio.gather(*(one(i) for i in range(n)))
    assert any(c == 0 for c in costs), "the budget never refused: the test proves nothing"
    return sum(costs)


def _worst(price: dict[str, float], prompt: int, output: int) -> float:
    return (prompt * price["input_per_1m"] + output * price["output_per_1m"]) / 1e6


async def test_a_pricier_fallback_cannot_overspend() -> None:
    """Issue 12, defect 1: the group's only member fails (500) and its fallback costs 10x as much."""
    cheap = {"input_per_1m": 1_000, "output_per_1m": 10_000}
    pricey = {"input_per_1m": 10_000, "output_per_1m": 100_000}
    gw = await _gateway(
        [
            {"name": "cheap", "fail_status": 500, "pricing": cheap},
            {"name": "pricey", "reply": REPLY, "latency_ms": 30, "pricing": pricey},
        ],
        {
            "groups": [{"name": "g", "deployments": [{"model": "cheap"}], "fallbacks": [{"to": ["pricey"]}]}],
            "retry": {"max_retries": 0},
            "breaker": {"enabled": False},
        },
    )
    budget = 2.22
    spent = await _spend(gw, budget, "hello there", "g", max_tokens=10)
    # One request's worst case is where it may end: the fallback (2 prompt tokens, 10 output tokens).
    assert spent <= budget + _worst(pricey, 2, 10)


async def test_a_cascade_reserves_every_tier_it_may_pay_for() -> None:
    """An automatic router that cascades pays for each tier it calls (usage summed, at the last price)."""
    price = {"input_per_1m": 10_000, "output_per_1m": 100_000}
    gw = await _gateway(
        [
            {"name": "small", "reply": REFUSAL, "pricing": price},  # a refusal escalates
            {"name": "mid", "reply": REFUSAL, "pricing": price},
            {"name": "large", "reply": REPLY, "latency_ms": 30, "pricing": price},
        ],
        {"auto": [{"simple": "small", "standard": "mid", "complex": "large", "cascade": True}]},
    )
    budget = 5.0
    spent = await _spend(gw, budget, "hi", "auto", max_tokens=10)
    # The worst case of one request: three calls, each the whole prompt and max_tokens.
    assert spent <= budget + 3 * _worst(price, 1, 10)
    deps, calls = gw.router.reachable(gw.router.resolve(RequestContext("x"), None, "small"), "chat", "auto")
    assert [d.name for d in deps] == ["small", "mid", "large"] and calls == 3


async def test_a_prompt_that_bills_more_tokens_than_characters_suggest_cannot_overspend() -> None:
    """Issue 12, defect 2: 400 one-letter words bill 400 tokens; characters / 4 said about 200."""
    price = {"input_per_1m": 10_000, "output_per_1m": 1_000}
    gw = await _gateway([{"name": "words", "reply": "ok", "latency_ms": 30, "pricing": price}])
    budget = 100.0
    spent = await _spend(gw, budget, "a " * 400, "words", max_tokens=5)
    assert spent <= budget + _worst(price, 400, 5)


async def test_the_estimate_names_every_reachable_deployment_with_its_own_cap() -> None:
    gw = await _gateway(
        [
            {"name": "a", "max_output_tokens": 100, "fail_status": 500},
            {"name": "b", "max_output_tokens": 300},
            {"name": "c", "max_output_tokens": 50},
        ],
        {
            "groups": [
                {"name": "g", "deployments": [{"model": "a"}], "fallbacks": [{"to": ["h"]}]},
                {
                    "name": "h",
                    "deployments": [{"model": "b"}],
                    "fallbacks": [{"when": ["timeout"], "to": ["c"]}],
                },
            ]
        },
    )
    seen: list[Estimate] = []
    free = BudgetLimiter(MemoryBudgetStore(), BudgetsSettings(), PriceBook([]))

    class Recording:
        async def admit(self, ctx: RequestContext, estimate: Estimate) -> Any:
            seen.append(estimate)
            return await free.admit(ctx, estimate)

    gw.limiter = Recording()
    await gw.handle(RequestContext("r"), CHAT, ChatRequest("g", [Message("user", "one two")], n=2))
    (est,) = seen
    assert est.prompt_tokens == 2 and est.max_output_tokens == 100
    assert est.worst == (("a", 2, 200), ("b", 2, 600), ("c", 2, 100))
    seen.clear()
    await gw.handle(RequestContext("r"), CHAT, ChatRequest("g", [Message("user", "x")], max_tokens=80))
    assert [w[0] for w in seen[0].worst] == ["a", "b"]  # c cannot take max_tokens=80: never routed to
