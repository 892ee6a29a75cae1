"""Exact-cache cost (not a test): ``ResponseCacheStage.lookup`` on a hit and on a miss, and ``store``,
per backend, in process (Redis at 127.0.0.1:6379 for the shared backend). Per-call p50 and p99 over
interleaved rounds (median of rounds), for a realistic request (system prompt + a 300-character question)
and a 1 kB answer.

    .venv/bin/python bench/cache_overhead.py               # memory, sqlite, redis
    .venv/bin/python bench/cache_overhead.py --calls 5000 --rounds 5 --backends memory
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from tollhouse.caching.stage import ResponseCacheStage
from tollhouse.config.cache import CacheSettings
from tollhouse.config.routing import RedisSettings
from tollhouse.pricing import PriceBook
from tollhouse.stores.build import cache_store
from tollhouse.types import ChatRequest, ChatResponse, Choice, Message, Principal, RequestContext, Usage

QUESTION = "Explain, in a few sentences, how a write-ahead log keeps a database consistent. " * 4
ANSWER = "A write-ahead log records every change before it is applied to the data files. " * 13


def request(i: int) -> ChatRequest:
    msgs = [Message("system", "You are a concise assistant."), Message("user", f"{QUESTION} ({i})")]
    # Temperature 0: only repeatable requests are cached by default (a sampled one would be a skip).
    return ChatRequest(model="m", messages=msgs, max_tokens=256, temperature=0.0)


def response() -> ChatResponse:
    return ChatResponse("chatcmpl-x", "m", [Choice(0, Message("assistant", ANSWER), "stop")], Usage(90, 220))


def context() -> RequestContext:
    ctx = RequestContext(request_id="r", model_requested="m", deployment="m")
    ctx.principal = Principal(key_id="k1", anonymous=False)
    return ctx


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def measure(backend: str, calls: int, rounds: int, tmp: Path) -> dict[str, float]:
    cfg = CacheSettings.model_validate({"backend": backend, "sqlite_path": str(tmp / f"{backend}.db")})
    redis = RedisSettings.model_validate({"prefix": f"th-bench-{uuid.uuid4().hex[:8]}:"})
    stage = ResponseCacheStage(cfg, cache_store(cfg, redis), PriceBook([]))
    await stage.start()
    try:
        for i in range(calls):  # fill: every even request is stored
            if i % 2 == 0:
                ctx = context()
                await stage.lookup(ctx, request(i))
                await stage.store(ctx, request(i), response())
        await asyncio.sleep(0.5)  # background writes land
        out: dict[str, list[float]] = {"hit": [], "miss": [], "hit p99": [], "miss p99": []}
        for _ in range(rounds):
            times: dict[str, list[float]] = {"hit": [], "miss": []}
            for i in range(calls):
                req = request(i)
                ctx = context()
                t0 = time.perf_counter()
                found = await stage.lookup(ctx, req)
                dt = time.perf_counter() - t0
                times["hit" if found is not None else "miss"].append(dt)
            for k in ("hit", "miss"):
                out[k].append(pct(times[k], 0.5))
                out[k + " p99"].append(pct(times[k], 0.99))
        return {k: statistics.median(v) * 1e3 for k, v in out.items()}
    finally:
        await stage.invalidate()
        await stage.aclose()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--backends", default="memory,sqlite,redis")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("| backend | lookup hit p50 | hit p99 | lookup miss p50 | miss p99 |")
        print("|---|---|---|---|---|")
        for backend in a.backends.split(","):
            r = await measure(backend, a.calls, a.rounds, Path(tmp))
            print(
                f"| {backend} | {r['hit']:.3f} ms | {r['hit p99']:.3f} ms | "
                f"{r['miss']:.3f} ms | {r['miss p99']:.3f} ms |"
            )


if __name__ == "__main__":
    asyncio.run(main())
