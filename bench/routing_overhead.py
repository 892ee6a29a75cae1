"""Routing benchmarks (not a test), in process against the mock provider, no network:

1. Overhead: ``Gateway.handle`` (chat) through the router vs. the same pipeline calling the provider directly,
   when nothing fails. Per-call latency p50 of each, over interleaved rounds (median of rounds).
2. Resilience: 10,000 requests to a group of two deployments, one failing 50 % of its requests (seeded),
   with the default routing settings; the share of requests the client sees succeed.

    .venv/bin/python bench/routing_overhead.py            # both
    .venv/bin/python bench/routing_overhead.py --calls 20000 --rounds 9 --requests 10000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import random
import statistics
import time
from collections import Counter
from collections.abc import Awaitable
from typing import Any

from tollhouse.errors import TollhouseError
from tollhouse.gateway import Gateway
from tollhouse.operations import CHAT
from tollhouse.providers.mock import MockProvider
from tollhouse.providers.registry import Deployment, ModelRegistry
from tollhouse.routing.group import Group
from tollhouse.routing.router import Router
from tollhouse.settings import MockModel, RoutingSettings
from tollhouse.types import ChatRequest, ChatResponse, Message, RequestContext


class DirectGateway(Gateway):
    """The pipeline with routing bypassed: the provider of the group's first deployment is called as
    before routing existed (the baseline)."""

    def _complete(self, ctx: RequestContext, group: Group, req: ChatRequest) -> Awaitable[ChatResponse]:
        return group.primary.provider.complete(req)


def registry(*models: dict[str, Any]) -> ModelRegistry:
    deps = []
    for m in models:
        cfg = MockModel.model_validate({"reply": "ok", **m})
        deps.append(Deployment(cfg, MockProvider(cfg)))
    return ModelRegistry(deps)


def request(model: str) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message(role="user", content="hello there")])


async def per_call_ns(gw: Gateway, model: str, calls: int) -> list[int]:
    req = request(model)
    out = []
    chat = gw.chat
    for _ in range(calls):
        ctx = RequestContext(request_id="b")
        t0 = time.perf_counter_ns()
        await chat(ctx, req)
        out.append(time.perf_counter_ns() - t0)
    return out


async def overhead(calls: int, rounds: int) -> None:
    reg = registry({"name": "m"}, {"name": "n"})
    routing = RoutingSettings.model_validate(
        {"groups": [{"name": "g", "deployments": [{"model": "m"}, {"model": "n"}]}]}
    )
    routed = Gateway(registry=reg, router=Router(reg, routing))
    direct = DirectGateway(registry=reg, router=Router(reg, routing))
    cases = {
        "direct (no routing)": (direct, "m"),
        "routed: plain model": (routed, "m"),
        "routed: group of two": (routed, "g"),
    }
    for gw, model in cases.values():  # warm up
        await per_call_ns(gw, model, 2000)
    p50s: dict[str, list[float]] = {name: [] for name in cases}
    gc.disable()
    try:
        for _ in range(rounds):
            for name, (gw, model) in cases.items():
                p50s[name].append(statistics.median(await per_call_ns(gw, model, calls)) / 1000)
            gc.collect()
    finally:
        gc.enable()
    base = statistics.median(p50s["direct (no routing)"])
    print(f"\n## Routing overhead ({calls} calls x {rounds} rounds, median of per-round p50, µs per call)\n")
    print("| path | p50 µs | added by routing µs |")
    print("|---|---|---|")
    for name, values in p50s.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.1f} | {med - base:+.1f} |")


async def resilience(requests: int, concurrency: int, breakers: bool) -> None:
    reg = registry(
        {"name": "flaky", "faults": ["status:500"], "fault_rate": 0.5, "fault_seed": 1},
        {"name": "steady"},
    )
    routing = RoutingSettings.model_validate(
        {
            "breaker": {"enabled": breakers},
            "seed": 1,
            "groups": [
                {
                    "name": "g",
                    "strategy": "weighted",
                    "deployments": [{"model": "flaky"}, {"model": "steady"}],
                }
            ],
        }
    )
    gw = Gateway(registry=reg, router=Router(reg, routing, rng=random.Random(1)))
    ok = 0
    errors: Counter[str] = Counter()
    attempts: Counter[int] = Counter()
    queue = iter(range(requests))

    async def worker() -> None:
        nonlocal ok
        for _ in queue:
            ctx = RequestContext(request_id="r")
            try:
                await gw.handle(ctx, CHAT, request("g"))
                ok += 1
            except TollhouseError as exc:
                errors[type(exc).__name__] += 1
            attempts[ctx.attempts] += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    flaky = reg.get("flaky").provider
    assert isinstance(flaky, MockProvider)
    label = "on" if breakers else "off"
    print(
        f"| {label} | {requests} | {ok / requests * 100:.2f} % | {flaky.calls} | {flaky.failures} "
        f"| {dict(sorted(attempts.items()))} | {dict(errors) or '-'} | {elapsed:.1f} s |"
    )


async def main(args: argparse.Namespace) -> None:
    if not args.skip_overhead:
        await overhead(args.calls, args.rounds)
    print(
        f"\n## One of two deployments failing 50 % ({args.requests} requests, {args.concurrency} concurrent, "
        "default routing settings, weighted 1:1)\n"
    )
    print(
        "| breakers | requests | client success | calls to flaky | flaky failures | attempts per request "
        "| errors | wall |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for breakers in (True, False):
        await resilience(args.requests, args.concurrency, breakers)


if __name__ == "__main__":
    logging.disable(logging.WARNING)  # circuit transitions are logged; not part of the measurement
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--skip-overhead", action="store_true")
    asyncio.run(main(parser.parse_args()))
