"""Stored-prompt overhead (not a test), in process against the mock provider, no network: ``Gateway.handle``
(chat) with no prompt stage, with the registry on but a request that names no prompt, and with a request
that renders a two-message stored prompt (files backend, counters in memory). Per-call p50 over interleaved
rounds (median of rounds).

    .venv/bin/python bench/prompt_overhead.py --calls 5000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from pathlib import Path

from tollhouse.gateway import Gateway
from tollhouse.operations import CHAT
from tollhouse.prompts.registry import PromptRegistry
from tollhouse.providers.mock import MockProvider
from tollhouse.providers.registry import Deployment, ModelRegistry
from tollhouse.routing.router import Router
from tollhouse.settings import MockModel, PromptsSettings
from tollhouse.stores.prompt_counters import MemoryPromptCounters
from tollhouse.stores.prompts import FilePromptStore
from tollhouse.types import ChatRequest, Message, PromptRef, RequestContext

VERSION = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "You answer questions about {{ product }} in {{ language }}."},
        {"role": "user", "content": "{{ question }}"},
    ],
    "variables": {
        "product": {"type": "string"},
        "language": {"type": "string"},
        "question": {"type": "string"},
    },
}
VARS = {"product": "Tollhouse", "language": "English", "question": "How do I rotate a key?"}


async def per_call(gw: Gateway, prompt: bool, calls: int) -> float:
    t0 = time.perf_counter()
    for i in range(calls):
        ctx = RequestContext(f"r{i}")
        if prompt:
            req = ChatRequest(model="", messages=[], prompt=PromptRef("faq", variables=VARS))
        else:
            req = ChatRequest(model="m", messages=[Message("user", "How do I rotate a key?")])
        await gw.handle(ctx, CHAT, req)
    return (time.perf_counter() - t0) / calls * 1e6


async def main(calls: int, rounds: int) -> None:
    cfg = MockModel.model_validate({"name": "m", "reply": "ok"})
    reg = ModelRegistry([Deployment(cfg, MockProvider(cfg))])
    with tempfile.TemporaryDirectory() as tmp:
        pcfg = PromptsSettings(enabled=True, folder=str(Path(tmp) / "p"))
        prompts = PromptRegistry(pcfg, FilePromptStore(pcfg.folder), MemoryPromptCounters())
        await prompts.start()
        await prompts.push("faq", VERSION)
        plain = Gateway(registry=reg, router=Router(reg))
        with_registry = Gateway(registry=reg, router=Router(reg), prompts=prompts)
        cases = {
            "no prompt stage": (plain, False),
            "registry on, no prompt": (with_registry, False),
            "stored prompt rendered": (with_registry, True),
        }
        results: dict[str, list[float]] = {k: [] for k in cases}
        for gw, p in cases.values():
            await per_call(gw, p, 200)  # warm up
        for _ in range(rounds):
            for name, (gw, p) in cases.items():
                gc.collect()
                results[name].append(await per_call(gw, p, calls))
        await prompts.aclose()
    base = statistics.median(results["no prompt stage"])
    for name, values in results.items():
        med = statistics.median(values)
        print(f"{name:24s} {med:8.1f} µs/call  ({med - base:+.1f} µs)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    asyncio.run(main(args.calls, args.rounds))
