"""Server-side tool loop overhead (not a test), in process, no network: ``Gateway.handle`` (chat) against a
mock model that answers instantly, with an instant tool (``echo``), so what is measured is the gateway's own
work.

- ``no tools, tools off`` vs ``no tools, tools on``: a request without gateway tools, with the tools stage
  off (``NoTools``) and on (``ToolLoop`` with the built-ins): what the hot path pays for the feature.
- ``1 round`` / ``N rounds``: a request opting in to ``echo`` whose model calls it N times (one call per
  answer) before answering. The loop's overhead per tool round is (N rounds - 0 rounds) / N, where
  ``0 rounds`` is the same opted-in request answered without a call (plan + reservation of the whole loop).
  Model and tool time are ~0 here (both return at once), so this is the loop itself: the plan, the schema
  check, the concurrency slot, ``wait_for``, the ledger line item, the message rebuild, one more trip
  through routing and the provider call, and the scan of the tool result by the (pass-through) guardrails.

    .venv/bin/python bench/tool_loop_overhead.py --calls 3000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from typing import Any

from tollhouse.config.tools import ToolsSettings
from tollhouse.gateway import Gateway
from tollhouse.operations import CHAT
from tollhouse.providers.mock import MockProvider
from tollhouse.providers.registry import Deployment, ModelRegistry
from tollhouse.routing.router import Router
from tollhouse.settings import MockModel
from tollhouse.tools.base import Tool
from tollhouse.tools.build import Tools
from tollhouse.types import ChatRequest, ChatResponse, Choice, Message, Raw, RequestContext, ToolCall, Usage


class ToolCallingModel(MockProvider):
    """Calls ``echo`` until the conversation holds ``rounds`` tool results (read from the user message)."""

    async def complete(self, req: ChatRequest) -> ChatResponse:
        want = int(req.messages[0].text().split()[-1])
        done = sum(1 for m in req.messages if m.role == "tool")
        if done >= want:
            msg = Message("assistant", "done")
        else:
            msg = Message(
                "assistant", None, tool_calls=[ToolCall(f"c{done}", "echo", f'{{"text": "r{done}"}}')]
            )
        return ChatResponse("id", req.model, [Choice(0, msg, "stop")], Usage(10, 2))


async def _echo(args: dict[str, Any]) -> str:
    return str(args["text"])


ECHO = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


async def per_call(gw: Gateway, tool_rounds: int | None, calls: int) -> float:
    t0 = time.perf_counter()
    for i in range(calls):
        ctx = RequestContext(f"r{i}")
        if tool_rounds is None:
            req = ChatRequest(model="m", messages=[Message("user", "rounds 0")])
        else:
            tools: list[Any] = [Raw({"type": "tollhouse", "name": "echo"})]
            req = ChatRequest(model="m", messages=[Message("user", f"rounds {tool_rounds}")], tools=tools)
        await gw.handle(ctx, CHAT, req)
    return (time.perf_counter() - t0) / calls * 1e6


async def main(calls: int, rounds: int, n: int) -> None:
    cfg = MockModel.model_validate({"name": "m", "reply": "ok"})
    reg = ModelRegistry([Deployment(cfg, ToolCallingModel(cfg))])
    tools = Tools(ToolsSettings(enabled=True, max_iterations=n + 1))
    tools.registry.register(Tool("echo", "Echo.", ECHO, _echo, source="bench"))
    off = Gateway(registry=reg, router=Router(reg))
    on = Gateway(registry=reg, router=Router(reg), tools=tools.loop)
    cases: dict[str, tuple[Gateway, int | None]] = {
        "no tools, tools off": (off, None),
        "no tools, tools on": (on, None),
        "opted in, 0 rounds": (on, 0),
        "opted in, 1 round": (on, 1),
        f"opted in, {n} rounds": (on, n),
        "no tools, tools off (2)": (off, None),  # the same case again: the noise band of the machine
    }
    results: dict[str, list[float]] = {k: [] for k in cases}
    for gw, r in cases.values():
        await per_call(gw, r, 200)  # warm up
    for _ in range(rounds):
        for name, (gw, r) in cases.items():
            gc.collect()
            results[name].append(await per_call(gw, r, calls))
    await tools.aclose()
    med = {k: statistics.median(v) for k, v in results.items()}
    base = min(med["no tools, tools off"], med["no tools, tools off (2)"])
    for name, value in med.items():
        print(f"{name:24s} {value:8.1f} µs/request  ({value - base:+.1f} µs)")
    per_round = (med[f"opted in, {n} rounds"] - med["opted in, 0 rounds"]) / n
    print(f"loop overhead per tool round (model and tool time ~0): {per_round:.1f} µs")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tool-rounds", type=int, default=3)
    args = ap.parse_args()
    asyncio.run(main(args.calls, args.rounds, args.tool_rounds))
