"""Retrieval benchmark on SciFact (embedded backend): ingest throughput (chunks/s) and query latency per
mode (p50 / p95, ms). Queries use one encoder thread; ingest uses ``--threads`` (default 2). For the one-core
latency figure: ``taskset -c 0 python bench/rag_bench.py``. ``--db`` keeps the
ingested collection between runs (the second run measures queries only)."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from tollhouse.evals.retrieval import load_dataset
from tollhouse.rag.embedding import Embedders, LocalEmbedder
from tollhouse.rag.service import Retrieval
from tollhouse.stores.rag_sqlite import SqliteRagStore

T = "bench"


async def main(dataset: Path, db: str, queries: int, threads: int) -> None:
    data = load_dataset(dataset, queries)
    rag = Retrieval(SqliteRagStore(db), Embedders(LocalEmbedder(threads=threads)))
    try:
        if await rag.store.get_collection(T, "scifact") is None:
            await rag.create(T, "scifact")
            t0, chunks = time.perf_counter(), 0
            for d in data.corpus:
                chunks += (
                    await rag.ingest(
                        T, "scifact", str(d["_id"]), d["text"] or d["title"], title=d["title"] or None
                    )
                ).chunks
            dt = time.perf_counter() - t0
            print(
                json.dumps(
                    {"ingest_chunks": chunks, "seconds": round(dt, 1), "chunks_per_s": round(chunks / dt, 1)}
                )
            )
        for mode in ("bm25", "dense", "hybrid"):
            await rag.search("scifact", "warm up", 10, tenant=T, mode=mode)
            lat = []
            for q in data.queries.values():
                t = time.perf_counter()
                await rag.search("scifact", q, 10, tenant=T, mode=mode)
                lat.append((time.perf_counter() - t) * 1000)
            print(
                json.dumps(
                    {
                        "mode": mode,
                        "queries": len(lat),
                        "p50_ms": round(statistics.median(lat), 2),
                        "p95_ms": round(statistics.quantiles(lat, n=20)[-1], 2),
                    }
                )
            )
    finally:
        await rag.aclose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="/work/shared/datasets/scifact")
    ap.add_argument("--db", default="/tmp/tollhouse-rag-bench.db")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2, help="encoder threads for ingest (rag.encoder_threads)")
    a = ap.parse_args()
    asyncio.run(main(Path(a.dataset), a.db, a.queries, a.threads))
