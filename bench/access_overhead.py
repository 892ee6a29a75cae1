"""Access-control overhead (not a test), in process against the mock provider, no network: ``authenticate``
+ ``Gateway.handle`` (chat) with auth, rate limits, budgets and the usage ledger on, against the same pipeline with
all four off (open access, no limits, no ledger). Per-call p50 over interleaved rounds (median of rounds).

    .venv/bin/python bench/access_overhead.py                 # embedded and Redis
    .venv/bin/python bench/access_overhead.py --calls 20000 --rounds 7

``embedded``: key cache + in-process token buckets and budget counters + ledger journaled to a local file
and written to SQLite in batches by a background task (which runs on the same event loop, so its share of
the work is counted). ``redis``: the same with rate limits and budgets in Redis at 127.0.0.1:6379 (two
atomic scripts per request: one at admission, one at settlement, for each of limits and budgets).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

from tollhouse.access.build import Access
from tollhouse.access.keys import KeySpec
from tollhouse.gateway import Gateway
from tollhouse.ledger.usage import UsageLedger, build_ledger_store
from tollhouse.operations import CHAT
from tollhouse.pipeline.admission import Admission, Limiter
from tollhouse.pricing import PriceBook
from tollhouse.providers.mock import MockProvider
from tollhouse.providers.registry import Deployment, ModelRegistry
from tollhouse.routing.router import Router
from tollhouse.settings import MockModel, Settings
from tollhouse.types import ChatRequest, Message, RequestContext


def settings(tmp: Path, backend: str) -> Settings:
    return Settings.model_validate(
        {
            "embedded": {"chat": False, "embeddings": False},
            "models": [{"name": "m", "provider": "mock", "reply": "ok", "pricing": {"output_per_1m": 1}}],
            "keys": {"sqlite_path": str(tmp / "keys.db")},
            "limits": {"backend": backend},
            "budgets": {"backend": backend, "teams": {"t": {"daily_usd": 1e9, "monthly_usd": 1e9}}},
            "redis": {"prefix": f"th-bench-{uuid.uuid4().hex[:8]}:"},
            "ledger": {"sqlite_path": str(tmp / "ledger.db"), "journal_dir": str(tmp / "journal")},
        }
    )


async def build(tmp: Path, backend: str | None, stack: AsyncExitStack) -> tuple[Gateway, str | None]:
    """The pipeline for one case; what it opens is closed by ``stack``."""
    cfg = MockModel.model_validate({"name": "m", "reply": "ok"})
    reg = ModelRegistry([Deployment(cfg, MockProvider(cfg))])
    stack.push_async_callback(reg.aclose)
    if backend is None:
        return Gateway(registry=reg, router=Router(reg)), None
    s = settings(tmp / backend, backend)
    prices = PriceBook(s.all_models())
    access = Access.build(s, None, prices)
    await access.open(stack)
    ledger = UsageLedger(s.ledger, build_ledger_store(s.ledger), prices)
    await ledger.start()
    stack.push_async_callback(ledger.aclose)
    spec = KeySpec(team="t", rpm=10**9, tpm=10**12, daily_usd=1e9)
    secret, _ = await access.keys.create(spec)
    limiters: list[Limiter] = [*access.limiters]
    gw = Gateway(
        registry=reg,
        auth=access.auth,
        limiter=Admission(limiters, concurrent=access.concurrent),
        ledger=ledger,
        router=Router(reg),
    )
    return gw, secret


async def per_call_ns(gw: Gateway, secret: str | None, calls: int) -> list[int]:
    req = ChatRequest(model="m", messages=[Message(role="user", content="hello there")], max_tokens=16)
    out = []
    for _ in range(calls):
        ctx = RequestContext(request_id="b")
        t0 = time.perf_counter_ns()
        await gw.authenticate(ctx, secret)
        await gw.handle(ctx, CHAT, req)
        out.append(time.perf_counter_ns() - t0)
    return out


async def main(calls: int, rounds: int, backends: list[str]) -> None:
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        async with AsyncExitStack() as stack:
            await measure(Path(tmp), calls, rounds, backends, stack)


async def measure(tmp: Path, calls: int, rounds: int, backends: list[str], stack: AsyncExitStack) -> None:
    cases: dict[str, tuple[Gateway, str | None]] = {"off": await build(tmp, None, stack)}
    for b in backends:
        cases[b] = await build(tmp, b, stack)
    for gw, secret in cases.values():
        await per_call_ns(gw, secret, 1000)
    p50s: dict[str, list[float]] = {n: [] for n in cases}
    for _ in range(rounds):
        for name, (gw, secret) in cases.items():
            gc.collect()
            ns = await per_call_ns(gw, secret, calls)
            p50s[name].append(statistics.median(ns) / 1000)
    base = statistics.median(p50s["off"])
    print(f"{'configuration':<12} {'p50 µs':>8} {'added':>10}")
    for name, vals in p50s.items():
        p50 = statistics.median(vals)
        added = "—" if name == "off" else f"+{p50 - base:.1f} µs"
        print(f"{name:<12} {p50:>8.1f} {added:>10}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--backends", default="memory,redis", help="comma-separated: memory, redis")
    args = ap.parse_args()
    asyncio.run(main(args.calls, args.rounds, args.backends.split(",")))
