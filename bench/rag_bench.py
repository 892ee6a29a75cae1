"""Retrieval benchmark on SciFact (embedded backend): ingest throughput (chunks/s, tokens/s) and query
latency per mode (p50 / p95, ms). Queries use one encoder thread; ingest uses ``--threads`` (default 2, as
``rag.encoder_threads``). For the one-core figures: ``taskset -c 0 python bench/rag_bench.py --threads 1``.
``--db`` keeps the ingested collection between runs (the second run measures queries only).

``--compare`` measures ingest only, before/after in one run: the first ``--docs`` documents in slices of
``--slice`` documents, each slice ingested by every variant in turn (alternating the order) into its own
fresh collection: ``one`` (``ingest`` per document, as before), ``many`` (``ingest_many``), and with
``--model OTHER.onnx`` the same two with that encoder graph. It prints the median chunks/s and the median
per-slice ratio to ``one`` (the machine is shared: compare within a run, not across runs)."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from tollhouse.evals.retrieval import Dataset, load_dataset
from tollhouse.rag.embedding import Embedders, LocalEmbedder
from tollhouse.rag.service import IngestResult, NewDocument, Outcome, Retrieval
from tollhouse.stores.rag_sqlite import SqliteRagStore

T = "bench"


def documents(data: Dataset, limit: int | None = None) -> list[NewDocument]:
    corpus = data.corpus[:limit] if limit else data.corpus
    return [NewDocument(str(d["_id"]), d["text"] or d["title"], title=d["title"] or None) for d in corpus]


async def ingest(rag: Retrieval, docs: list[NewDocument], one_by_one: bool) -> dict[str, float]:
    t0 = time.perf_counter()
    outcomes: list[Outcome]
    if one_by_one:
        outcomes = [await rag.ingest(T, "scifact", d.id, d.data, title=d.title) for d in docs]
    else:
        outcomes = await rag.ingest_many(T, "scifact", docs)
    dt = time.perf_counter() - t0
    done = [o for o in outcomes if isinstance(o, IngestResult)]
    chunks, tokens = sum(r.chunks for r in done), sum(r.tokens for r in done)
    return {
        "ingest_chunks": chunks,
        "seconds": round(dt, 1),
        "chunks_per_s": round(chunks / dt, 1),
        "tokens_per_s": round(tokens / dt),
    }


async def compare(data: Dataset, docs: int, slice_docs: int, threads: int, other: str | None) -> None:
    variants: list[tuple[str, str | None]] = [("one", None), ("many", None)]
    if other:
        variants += [("one", other), ("many", other)]
    subset = documents(data, docs)
    with tempfile.TemporaryDirectory() as tmp:
        rags = {
            f"{how}/{Path(model).stem}" if model else how: Retrieval(
                SqliteRagStore(str(Path(tmp) / f"{i}.db")),
                Embedders(LocalEmbedder(threads=threads, model_path=model)),
            )
            for i, (how, model) in enumerate(variants)
        }
        try:
            for rag in rags.values():
                await rag.create(T, "scifact")
                await ingest(rag, subset[:2], one_by_one=False)  # load the sessions
            seen: dict[str, list[float]] = {name: [] for name in rags}
            for n, start in enumerate(range(2, len(subset), slice_docs)):
                part = subset[start : start + slice_docs]
                for name, rag in list(rags.items())[:: 1 if n % 2 == 0 else -1]:
                    seen[name].append((await ingest(rag, part, name.startswith("one")))["chunks_per_s"])
        finally:
            for rag in rags.values():
                await rag.aclose()
    first = seen["one"]
    for name, v in seen.items():
        ratio = statistics.median(x / y for x, y in zip(v, first, strict=True))
        print(
            json.dumps(
                {
                    "variant": name,
                    "slices": len(v),
                    "median_chunks_per_s": round(statistics.median(v), 1),
                    "median_ratio_to_one": round(ratio, 3),
                    "runs": v,
                }
            )
        )


async def main(dataset: Path, db: str, queries: int, threads: int) -> None:
    data = load_dataset(dataset, queries)
    rag = Retrieval(SqliteRagStore(db), Embedders(LocalEmbedder(threads=threads)))
    try:
        if await rag.store.get_collection(T, "scifact") is None:
            await rag.create(T, "scifact")
            print(json.dumps(await ingest(rag, documents(data), one_by_one=False)))
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
    ap.add_argument("--compare", action="store_true", help="ingest only: before/after in one run")
    ap.add_argument("--docs", type=int, default=1000, help="documents per --compare run")
    ap.add_argument("--slice", type=int, default=60, help="documents per --compare slice")
    ap.add_argument("--model", default=None, help="--compare: also ingest with this ONNX graph")
    a = ap.parse_args()
    if a.compare:
        asyncio.run(compare(load_dataset(Path(a.dataset), 1), a.docs, a.slice, a.threads, a.model))
    else:
        asyncio.run(main(Path(a.dataset), a.db, a.queries, a.threads))
