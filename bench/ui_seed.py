"""Fill a SQLite usage ledger with synthetic records (for the dashboard benchmark and its screenshots).

    .venv/bin/python bench/ui_seed.py /tmp/ledger.db --rows 100000 --days 30

Records spread over the last ``days`` with a daily rhythm, across a few models, keys, users and teams, with
errors, cache hits, guardrail decisions and prices, as the gateway writes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import time
import uuid

from tollhouse.stores.base import LedgerRecord
from tollhouse.stores.sqlite import SqliteLedgerStore

MODELS = [
    ("gpt-4o-mini", 0.15, 0.6),
    ("claude-haiku", 0.8, 4.0),
    ("llama-local", 0.0, 0.0),
    ("gpt-4o", 2.5, 10.0),
]
TEAMS = {"alice": "search", "bob": "search", "carol": "support", "dave": "support", "erin": "labs"}
KEYS = [f"key_{i:016x}" for i in range(1, 9)]
RULES = [("pii", "redact"), ("injection", "block"), ("moderation", "flag"), ("injection", "shadow_block")]


def record(rng: random.Random, ts: float) -> LedgerRecord:
    model, pin, pout = rng.choices(MODELS, weights=[6, 2, 3, 1])[0]
    key = rng.choice(KEYS)
    user = list(TEAMS)[KEYS.index(key) % len(TEAMS)]
    status = rng.choices([200, 429, 502, 400], weights=[95, 2, 2, 1])[0]
    cache = rng.choices(["miss", "hit", "semantic-hit", "skip"], weights=[70, 18, 7, 5])[0]
    hit = cache in ("hit", "semantic-hit")
    pt, ct = rng.randint(40, 2400), rng.randint(10, 700)
    cost = (pt * pin + ct * pout) / 1e6
    guard = json.dumps([list(rng.choice(RULES))]) if rng.random() < 0.04 else None
    latency = 3.0 if hit else rng.lognormvariate(math.log(450), 0.6)
    return LedgerRecord(
        id=uuid.uuid4().hex,
        request_id=uuid.uuid4().hex,
        ts=ts,
        endpoint="chat",
        key_id=key,
        user=user,
        team=TEAMS[user],
        model=model,
        model_served=model,
        deployment=model,
        prompt_tokens=pt if status == 200 else None,
        completion_tokens=ct if status == 200 and not hit else (ct if hit else None),
        cached_tokens=0,
        cost_usd=(0.0 if hit else cost) if status == 200 else None,
        latency_ms=latency,
        ttft_ms=None,
        status=status,
        error_class=None
        if status == 200
        else {429: "RateLimited", 502: "UpstreamError", 400: "InvalidRequest"}[status],
        stream=rng.random() < 0.3,
        cache_hit=hit,
        guardrails=guard,
        prompt_version=None,
        cache_status=cache,
        saved_usd=cost if hit and status == 200 else None,
    )


async def seed(path: str, rows: int, days: float, seed_: int = 7) -> None:
    rng = random.Random(seed_)
    now = time.time()
    store = SqliteLedgerStore(path)
    await store.open()
    batch: list[LedgerRecord] = []
    for _ in range(rows):
        # A daily rhythm: more traffic in the (UTC) afternoon.
        while True:
            ts = now - rng.random() * days * 86400
            hour = (ts % 86400) / 3600
            if rng.random() < 0.35 + 0.65 * math.sin(math.pi * hour / 24) ** 2:
                break
        batch.append(record(rng, ts))
        if len(batch) == 5000:
            await store.write(batch)
            batch.clear()
    if batch:
        await store.write(batch)
    await store.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("path")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--days", type=float, default=30.0)
    args = ap.parse_args()
    asyncio.run(seed(args.path, args.rows, args.days))


if __name__ == "__main__":
    main()
