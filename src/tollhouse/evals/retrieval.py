"""``tollhouse eval retrieval``: recall@k, MRR and nDCG@10 of BM25, dense and hybrid search over a BEIR-style
dataset (``corpus.jsonl``, ``queries.jsonl``, ``qrels.tsv``), with query latency and ingest throughput.
The corpus is ingested into a fresh collection of a temporary SQLite store (embedded backend).
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tollhouse.rag.embedding import Embedders, LocalEmbedder
from tollhouse.rag.service import IngestResult, Mode, NewDocument, Outcome, Retrieval
from tollhouse.stores.rag_sqlite import SqliteRagStore

MODES: tuple[Mode, ...] = ("bm25", "dense", "hybrid")
TENANT = "eval"


@dataclass
class Dataset:
    corpus: list[dict[str, Any]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_dataset(root: Path, limit_queries: int | None = None) -> Dataset:
    for name in ("corpus.jsonl", "queries.jsonl", "qrels.tsv"):
        if not (root / name).is_file():
            raise FileNotFoundError(f"{root / name} is missing (BEIR layout expected)")
    corpus = [json.loads(line) for line in (root / "corpus.jsonl").open() if line.strip()]
    qrels: dict[str, dict[str, int]] = {}
    for line in (root / "qrels.tsv").read_text().splitlines()[1:]:
        qid, did, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(qid, {})[did] = int(score)
    queries = {}
    for line in (root / "queries.jsonl").open():
        q = json.loads(line)
        if q["_id"] in qrels:
            queries[q["_id"]] = q["text"]
    if limit_queries:
        queries = dict(list(queries.items())[:limit_queries])
    return Dataset(corpus, queries, qrels)


@dataclass
class Scores:
    mode: str
    recall: dict[int, float] = field(default_factory=dict)
    mrr: float = 0.0
    ndcg10: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0


def score_ranking(
    ranked: list[str], relevant: dict[str, int], ks: tuple[int, ...]
) -> tuple[dict[int, float], float, float]:
    recall = {k: len(set(ranked[:k]) & relevant.keys()) / len(relevant) for k in ks}
    rr = next((1.0 / i for i, d in enumerate(ranked, 1) if d in relevant), 0.0)
    dcg = sum(relevant.get(d, 0) / math.log2(i + 1) for i, d in enumerate(ranked[:10], 1))
    ideal = sum(g / math.log2(i + 1) for i, g in enumerate(sorted(relevant.values(), reverse=True)[:10], 1))
    return recall, rr, dcg / ideal if ideal else 0.0


async def run_eval(
    root: Path,
    ks: tuple[int, ...] = (1, 5, 10),
    limit_queries: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    data = load_dataset(root, limit_queries)
    with tempfile.TemporaryDirectory() as tmp:
        rag = Retrieval(SqliteRagStore(str(Path(tmp) / "eval.db")), Embedders(LocalEmbedder(threads=2)))
        await rag.store.open()
        try:
            await rag.create(TENANT, "eval")
            docs = [
                NewDocument(
                    str(doc["_id"]),
                    doc.get("text", "") or doc.get("title", ""),
                    title=doc.get("title") or None,
                )
                for doc in data.corpus
            ]
            settled = 0
            t0 = time.perf_counter()

            def done(_: NewDocument, __: Outcome) -> None:
                nonlocal settled
                settled += 1
                if progress:
                    progress(settled, len(docs))

            outcomes = await rag.ingest_many(TENANT, "eval", docs, done=done)
            ingested = [o for o in outcomes if isinstance(o, IngestResult)]
            chunks, tokens = sum(o.chunks for o in ingested), sum(o.tokens for o in ingested)
            ingest_s = time.perf_counter() - t0
            results = []
            for mode in MODES:
                s = Scores(mode, {k: 0.0 for k in ks})
                lat = []
                for qid, text in data.queries.items():
                    q0 = time.perf_counter()
                    hits = await rag.search("eval", text, max(max(ks), 10) * 3, tenant=TENANT, mode=mode)
                    lat.append((time.perf_counter() - q0) * 1000)
                    ranked = list(dict.fromkeys(h.chunk.document_id for h in hits))
                    recall, rr, ndcg = score_ranking(ranked, data.qrels[qid], ks)
                    for k in ks:
                        s.recall[k] += recall[k]
                    s.mrr += rr
                    s.ndcg10 += ndcg
                n = len(data.queries)
                s.recall = {k: v / n for k, v in s.recall.items()}
                s.mrr /= n
                s.ndcg10 /= n
                s.p50_ms = statistics.median(lat)
                s.p95_ms = statistics.quantiles(lat, n=20)[-1] if len(lat) > 1 else lat[0]
                results.append(s)
        finally:
            await rag.aclose()
    return {
        "documents": len(data.corpus),
        "chunks": chunks,
        "queries": len(data.queries),
        "ingest_seconds": ingest_s,
        "chunks_per_second": chunks / ingest_s if ingest_s else 0.0,
        "tokens_per_second": tokens / ingest_s if ingest_s else 0.0,
        "modes": [
            {
                "mode": s.mode,
                **{f"recall@{k}": v for k, v in s.recall.items()},
                "mrr": s.mrr,
                "ndcg@10": s.ndcg10,
                "p50_ms": s.p50_ms,
                "p95_ms": s.p95_ms,
            }
            for s in results
        ],
    }


def evaluate(
    root: str, limit_queries: int | None = None, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    return asyncio.run(run_eval(Path(root), limit_queries=limit_queries, progress=progress))


def render(result: dict[str, Any]) -> str:
    lines = [
        f"{result['documents']} documents, {result['chunks']} chunks, {result['queries']} queries; ingest "
        f"{result['ingest_seconds']:.1f} s ({result['chunks_per_second']:.0f} chunks/s, "
        f"{result['tokens_per_second']:.0f} tokens/s)",
        "",
        "| mode | recall@1 | recall@5 | recall@10 | MRR | nDCG@10 | p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in result["modes"]:
        lines.append(
            f"| {m['mode']} | {m['recall@1']:.3f} | {m['recall@5']:.3f} | {m['recall@10']:.3f} "
            f"| {m['mrr']:.3f} | {m['ndcg@10']:.3f} | {m['p50_ms']:.1f} | {m['p95_ms']:.1f} |"
        )
    return "\n".join(lines)


def cli_eval(dataset: str, limit: int | None, out: str | None, stream: TextIO) -> int:
    root = Path(dataset)
    try:
        load_dataset(root, 1)
    except (FileNotFoundError, ValueError) as exc:
        print(f"tollhouse: --dataset: {exc}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    bar = tqdm(unit="doc", file=sys.stderr)

    def progress(i: int, n: int) -> None:
        bar.total = n
        bar.update(1)

    result = evaluate(dataset, limit, progress)
    bar.close()
    print(render(result), file=stream)
    if out:
        Path(out).write_text(json.dumps(result, indent=2))
    return 0
