"""Dense search on PostgreSQL: pgvector (HNSW in SQL) against the fallback (vectors searched in numpy in the
gateway), on the same server and the same SciFact collection, in one run.

The collection is ingested once into SQLite (``--sqlite``, kept between runs; ``bench/rag_bench.py`` uses
the same file) and copied with its vectors into two PostgreSQL table sets (``bench_pgvector_*``,
``bench_fallback_*``), as ``tollhouse rag copy`` does. The queries are embedded once; then for each query
both backends search, in alternating order: ``vector_search`` alone (k = 30, what differs between them) and
the full hybrid search (BM25 + dense + fusion, without the query embedding). Prints recall@5 and nDCG@10
(document level, SciFact dev qrels) and latency medians, per backend.

    taskset -c 0 python bench/rag_pgvector_bench.py --dsn postgresql://postgres@127.0.0.1:PORT/postgres

The gateway's numpy runs on one BLAS thread (``OPENBLAS_NUM_THREADS=1``, as ``tollhouse serve`` sets it): on
a busy machine a multi-threaded matrix product made the fallback five times slower.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `tollhouse serve` sets it (cli.py)

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from tollhouse.evals.retrieval import load_dataset, score_ranking
from tollhouse.rag.embedding import Embedders, LocalEmbedder
from tollhouse.rag.service import Retrieval, fuse
from tollhouse.stores.rag_postgres import PgRagStore
from tollhouse.stores.rag_sqlite import SqliteRagStore

T, C, DEPTH = "bench", "scifact", 30
WIDE = max(DEPTH * 4, 40)  # the candidates hybrid search takes from each retriever (rag/service.py)
BACKENDS = ("fallback", "pgvector")


async def source(rag: Retrieval, data: Any) -> None:
    if await rag.store.get_collection(T, C) is not None:
        return
    await rag.create(T, C)
    t0 = time.perf_counter()
    for d in data.corpus:
        await rag.ingest(T, C, str(d["_id"]), d["text"] or d["title"], title=d["title"] or None)
    print(json.dumps({"ingested_into_sqlite_s": round(time.perf_counter() - t0, 1)}))


async def main(dataset: Path, sqlite: str, dsn: str, queries: int | None) -> None:
    data = load_dataset(dataset, queries)
    embedders = Embedders(LocalEmbedder(threads=2))
    src = Retrieval(SqliteRagStore(sqlite), embedders)
    await source(src, data)
    stores: dict[str, PgRagStore] = {}
    for b in BACKENDS:
        s = PgRagStore(dsn, f"bench_{b}", vectors=b)  # type: ignore[arg-type]
        await s.open()
        assert s.pgvector is (b == "pgvector"), f"{b}: pgvector={s.pgvector}"
        if await s.get_collection(T, C) is None:
            t0 = time.perf_counter()
            await src.copy_to(Retrieval(s, embedders), T, C)
            print(json.dumps({"backend": b, "copied_s": round(time.perf_counter() - t0, 1)}))
        stores[b] = s
    texts = list(data.queries.values())
    vectors = await embedders.get("local-embed").embed(texts)
    lat: dict[str, dict[str, list[float]]] = {b: {"dense": [], "hybrid": []} for b in BACKENDS}
    score: dict[str, dict[str, list[float]]] = {
        b: {m: [0.0, 0.0] for m in ("dense", "hybrid")} for b in BACKENDS
    }
    for b in BACKENDS:  # warm: the fallback loads the collection's vectors once per version
        await stores[b].vector_search(T, C, vectors[0], DEPTH, None)
    for n, (qid, text) in enumerate(data.queries.items()):
        order = BACKENDS if n % 2 == 0 else BACKENDS[::-1]
        for b in order:
            s = stores[b]
            t0 = time.perf_counter()
            dense = await s.vector_search(T, C, vectors[n], DEPTH, None)
            t1 = time.perf_counter()
            keyword = await s.keyword_search(T, C, text, WIDE, None)
            hybrid = fuse(keyword, await s.vector_search(T, C, vectors[n], WIDE, None), DEPTH)
            t2 = time.perf_counter()
            lat[b]["dense"].append((t1 - t0) * 1000)
            lat[b]["hybrid"].append((t2 - t1) * 1000)
            for mode, ranked in (("dense", dense), ("hybrid", hybrid)):
                docs = {c.id: c.document_id for c in await s.chunks(T, C, [i for i, _ in ranked])}
                ids = list(dict.fromkeys(docs[i] for i, _ in ranked if i in docs))
                recall, _, ndcg = score_ranking(ids, data.qrels[qid], (5,))
                score[b][mode][0] += recall[5]
                score[b][mode][1] += ndcg
    nq = len(data.queries)
    for b in BACKENDS:
        for mode in ("dense", "hybrid"):
            ms = lat[b][mode]
            print(
                json.dumps(
                    {
                        "backend": b,
                        "search": mode,
                        "queries": nq,
                        "recall@5": round(score[b][mode][0] / nq, 3),
                        "ndcg@10": round(score[b][mode][1] / nq, 3),
                        "p50_ms": round(statistics.median(ms), 2),
                        "p95_ms": round(float(np.percentile(ms, 95)), 2),
                    }
                )
            )
    for s in stores.values():
        await s.aclose()
    await src.aclose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="/work/shared/datasets/scifact")
    ap.add_argument("--sqlite", default="/tmp/tollhouse-rag-bench.db")
    ap.add_argument("--dsn", required=True, help="a PostgreSQL whose role may CREATE EXTENSION vector")
    ap.add_argument("--queries", type=int, default=None, help="first N dev queries (default: all 809)")
    a = ap.parse_args()
    asyncio.run(main(Path(a.dataset), a.sqlite, a.dsn, a.queries))
