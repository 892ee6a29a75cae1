"""Semantic cache lookup cost: embed p50 (the int8 and exact encoders, ADR 0016), search p50 at 10k / 100k
entries in one scope (exact, HNSW), total; ``--redis URL`` / ``--pg DSN`` add the shared-backend figures of
ADR 0009. Usage: ``.venv/bin/python bench/semantic_cache.py [--datasets DIR] [--n 200] [--encoder KIND]``.
Vectors are real embedded paraphrase / SciFact sentences and mixtures of two (random vectors make ANN recall
meaningless); queries are paraphrases of stored texts."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tollhouse.caching.embedder import load_encoder
from tollhouse.caching.semantic import SemanticScope
from tollhouse.caching.vectors import MemorySemanticIndex, _hnswlib

F32 = npt.NDArray[np.float32]
ROOT = Path(__file__).resolve().parents[1]
SCOPE = SemanticScope("key:bench", "m", "ctx")


def ms(xs: list[float]) -> str:
    return f"p50 {statistics.median(xs) * 1000:7.3f} ms  p99 {sorted(xs)[int(len(xs) * 0.99)] * 1000:7.3f} ms"


def load_texts(datasets: Path, limit: int) -> tuple[list[str], list[str], list[str]]:
    """(stored q1, their paraphrases q2, other real sentences)."""
    pairs = [json.loads(x) for x in (datasets / "paraphrase" / "dev.jsonl").read_text().splitlines() if x]
    dups = [p for p in pairs if p["duplicate"]][:limit]
    other = [p["q1"] for p in pairs if not p["duplicate"]] + [p["q2"] for p in pairs if not p["duplicate"]]
    queries = datasets / "scifact" / "queries.jsonl"
    if queries.is_file():
        other += [json.loads(x)["text"] for x in queries.read_text().splitlines() if x]
    return [p["q1"] for p in dups], [p["q2"] for p in dups], other[:2500]


def corpus(base: F32, n: int, seed: int = 0) -> F32:
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(base), n), rng.integers(0, len(base), n)
    w = rng.uniform(0.55, 0.95, (n, 1)).astype(np.float32)
    m = w * base[i] + (1 - w) * base[j] + rng.normal(0, 0.01, (n, base.shape[1])).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return np.ascontiguousarray(m, dtype=np.float32)


def build(stored: F32, texts: list[str], filler: F32, *, ann: bool) -> MemorySemanticIndex:
    n = len(stored) + len(filler)
    idx = MemorySemanticIndex(threshold=0.9, max_entries=n, ann_min_entries=20_000 if ann else n + 1)
    far = time.time() + 86_400
    rows = [(SCOPE, v, t, f"q{k}", far) for k, (v, t) in enumerate(zip(stored, texts, strict=True))]
    rows += [(SCOPE, v, f"filler {k}", f"f{k}", far) for k, v in enumerate(filler)]
    idx.vectors.add_many(rows)
    if ann:
        scope = idx.vectors._scopes[SCOPE]
        t0 = time.monotonic()
        while scope.ann is None and scope.building:
            time.sleep(0.1)
        print(f"    HNSW graph over {n} entries built in {time.monotonic() - t0:.1f} s (background thread)")
    return idx


def search_times(idx: MemorySemanticIndex, queries: F32, texts: list[str]) -> tuple[list[float], int]:
    times, hits = [], 0
    for q, t in zip(queries, texts, strict=True):
        t0 = time.perf_counter()
        hit = idx.match(SCOPE, q, t)
        times.append(time.perf_counter() - t0)
        hits += hit is not None and hit.entry_key.startswith("q")
    return times, hits


async def redis_propagation(url: str, vec: F32, n: int) -> list[float]:
    from tollhouse.caching.shared_index import SharedSemanticIndex
    from tollhouse.stores.semantic import RedisSemanticLog

    prefix = f"bench-{time.time_ns()}:"
    log_a, log_b = RedisSemanticLog(url, prefix), RedisSemanticLog(url, prefix)
    a, b = (
        SharedSemanticIndex(MemorySemanticIndex(), log_a),
        SharedSemanticIndex(MemorySemanticIndex(), log_b),
    )
    await a.start()
    await b.start()
    delays = []
    try:
        for k in range(n):
            scope = SemanticScope("key:bench", "m", f"ctx{k}")
            t0 = time.perf_counter()
            await a.add(scope, vec, "text", f"e{k}", time.time() + 60)
            deadline = t0 + 5.0
            while time.perf_counter() < deadline:
                if b.memory.vectors.size(scope):
                    break
                await asyncio.sleep(0.0002)
            delays.append(time.perf_counter() - t0)
    finally:
        await log_a._redis.delete(log_a.stream)
        await a.aclose()
        await b.aclose()
    return delays


async def pg_bruteforce(dsn: str, base: F32, query: F32, n: int, reps: int) -> list[float]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    table = f"bench_semantic_{time.time_ns()}"
    try:
        await conn.execute(f"CREATE TEMP TABLE {table} (id int, v real[])")
        await conn.copy_records_to_table(table, records=[(k, base[k].tolist()) for k in range(n)])
        sql = (
            f"SELECT id, (SELECT sum(a * b) FROM unnest(v, $1::real[]) AS t(a, b)) AS s FROM {table} "
            "ORDER BY s DESC LIMIT 8"
        )
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            await conn.fetch(sql, query.tolist())
            times.append(time.perf_counter() - t0)
        return times
    finally:
        await conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--n", type=int, default=200, help="queries per measurement")
    ap.add_argument("--redis", help="Redis URL: measure propagation between two processes' indexes")
    ap.add_argument("--pg", help="PostgreSQL DSN: measure brute-force cosine in SQL over 10k rows")
    ap.add_argument(
        "--encoder", choices=["int8", "exact", "both"], default="both", help="cache.semantic.encoder to time"
    )
    args = ap.parse_args()
    if not (args.datasets / "paraphrase" / "dev.jsonl").is_file():
        print(f"paraphrase pairs not found under {args.datasets}", file=sys.stderr)
        return 2
    q1, q2, other = load_texts(args.datasets, args.n)
    kinds = ["int8", "exact"] if args.encoder == "both" else [args.encoder]
    embed_p50: dict[str, float] = {}
    for kind in kinds:
        enc = load_encoder(kind)
        t0 = time.perf_counter()
        stored, queries, extra = enc.encode(q1), enc.encode(q2), enc.encode(other)
        print(
            f"[{kind}] embedded {len(q1) * 2 + len(other)} real sentences in {time.perf_counter() - t0:.1f} s"
        )
        for t in q2[:20]:  # warm-up
            enc.encode([t])
        embed = []
        for t in q2:
            t0 = time.perf_counter()
            enc.encode([t])
            embed.append(time.perf_counter() - t0)
        embed_p50[kind] = statistics.median(embed)
        print(f"[{kind}] embed (one query):             {ms(embed)}")

    base = np.concatenate([stored, extra])
    results: dict[str, float] = {}
    for size in (10_000, 100_000):
        filler = corpus(base, size - len(stored))
        for ann in (False, True):
            if ann and (_hnswlib() is None or size < 20_000):
                continue
            label = f"search {size // 1000}k {'HNSW' if ann else 'exact'}"
            idx = build(stored, q1, filler, ann=ann)
            times, hits = search_times(idx, queries, q2)
            results[label] = statistics.median(times)
            print(f"{label + ' (+ checks):':<38}{ms(times)}  hits {hits}/{len(q2)}")
    best_100k = min(v for k, v in results.items() if k.startswith("search 100k"))
    for kind, p50 in embed_p50.items():
        print(f"[{kind}] total lookup at 100k (embed + search): p50 {(p50 + best_100k) * 1000:7.3f} ms")

    if args.redis:
        delays = asyncio.run(redis_propagation(args.redis, stored[0], 100))
        print(f"Redis stream propagation A → B:       {ms(delays)}")
    if args.pg:
        times = asyncio.run(pg_bruteforce(args.pg, corpus(base, 10_000), queries[0], 10_000, 5))
        print(f"PostgreSQL brute force, 10k rows:     {ms(times)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
