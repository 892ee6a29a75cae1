"""``tollhouse eval guardrails``: precision / recall / F1 / FPR of the guardrails on the shared dev sets.

Model figures are 5-fold cross-validated (every row is scored by a model fitted without it), never
train-set figures; latency is that of the shipped models. Every rate has its 95 % interval (Wilson; F1 by
row bootstrap). PII is ``evals/pii.py``; moderation scores the lexical rules and the classifier.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tollhouse.evals import moderation_eval, pii, synthetic, training
from tollhouse.evals.ordinary import HELD_OUT
from tollhouse.evals.report import SETS, prf, rate
from tollhouse.evals.report import rows as _rows
from tollhouse.guardrails.injection import InjectionDetector, InjectionModel


def _counts(pred: list[int], gold: list[int]) -> tuple[int, int, int]:
    tp = sum(1 for p, t in zip(pred, gold, strict=True) if p and t)
    fp = sum(1 for p, t in zip(pred, gold, strict=True) if p and not t)
    fn = sum(1 for p, t in zip(pred, gold, strict=True) if not p and t)
    return tp, fp, fn


def _per_row(pred: list[int], gold: list[int]) -> list[tuple[int, int, int]]:
    return [
        (int(bool(p and t)), int(bool(p and not t)), int(bool(t and not p)))
        for p, t in zip(pred, gold, strict=True)
    ]


def _pct(times: list[float]) -> str:
    return f"p50 {np.percentile(times, 50):.3f} ms  p99 {np.percentile(times, 99):.3f} ms"


def eval_injection(
    path: Path, limit: int | None = None, latency_rows: int = 300, *, classifier: bool = False
) -> list[str]:
    """``classifier``: also cross-validate the opt-in embedding classifier (encodes every row: minutes)."""
    rows = _rows(path, limit)
    from tollhouse.embeddings.encoder import SentenceEncoder

    datasets = path.parent.parent
    moderation = datasets / "moderation" / "dev.jsonl"
    benign = [r["prompt"] for r in _rows(moderation, limit)] if moderation.is_file() else []
    prep = training.prepare(
        [r["text"] for r in rows],
        [int(r["label"]) for r in rows],
        [str(r.get("source", "")) for r in rows],
        SentenceEncoder().encode if classifier else None,
        training.ORDINARY if limit is None else min(training.ORDINARY, limit),  # a slice: fewer extras
        benign=benign,
        synthetic_n=training.SYNTHETIC if limit is None else min(training.SYNTHETIC, 4 * limit),
    )
    folds = 5 if len(rows) >= 50 else 2
    configs = (False, True) if classifier else (False,)
    cv = training.cross_validate(prep, folds=folds, classifiers=configs)
    out: list[str] = []
    y = [int(v) for v in prep.y[: prep.n]]
    rule = [int(r is not None) for r in prep.rule[: prep.n]]
    out.append(
        f"injection rules alone ({len(rows)} rows, fixed): {prf(*_counts(rule, y), _per_row(rule, y))}"
    )
    for config in configs:
        mode = "rules + model + embedding classifier" if config else "rules + model (default)"
        preds, layers = cv[config]
        title = f"{folds}-fold cross-validation): {mode}"
        out += _injection_metrics(rows, y, preds[: prep.n], layers[: prep.n], title)
        if benign:
            fpr = rate(sum(preds[prep.n :]), len(benign))
            out.append(f"  moderation texts (benign long-form, n={len(benign)}, CV): FPR {fpr}")
    shipped = InjectionModel.load()
    out += generated_held_out(rows, benign, shipped.doc_threshold, limit)
    # Ordinary prompts written apart from the generated ones; the shipped model never saw them.
    det = InjectionDetector(shipped, None, classifier=False)
    flagged = sum(1 for t in HELD_OUT if (d := det.fast(t)[0]) is not None and d.injection)
    out.append(
        f"  ordinary prompts (held out, n={len(HELD_OUT)}): FPR {rate(flagged, len(HELD_OUT))} "
        "(shipped model)"
    )
    paraphrase = datasets / "paraphrase" / "dev.jsonl"
    if paraphrase.is_file():  # user questions no model was fitted on
        pairs = _rows(paraphrase, limit)
        qs = list(dict.fromkeys([p["q1"] for p in pairs] + [p["q2"] for p in pairs]))
        hits = sum(1 for q in qs if (d := det.fast(q)[0]) is not None and d.injection)
        out.append(
            f"  questions (paraphrase set, never fitted on, n={len(qs)}): FPR {rate(hits, len(qs))} "
            "(shipped model)"
        )
    # Latency of the shipped detector, benign and injection rows apart (the default: no encoder).
    times: dict[int, list[float]] = {0: [], 1: []}
    sample = rows[:: max(1, len(rows) // latency_rows)]

    async def run() -> None:
        await det.detect("warm up")
        for row in sample:
            det._seen.clear()  # measure the work, not the per-text cache
            t0 = time.perf_counter()
            await det.detect(row["text"])
            times[int(row["label"])].append((time.perf_counter() - t0) * 1000)

    asyncio.run(run())
    for label, name in ((0, "benign"), (1, "injection")):
        if times[label]:
            out.append(
                f"  latency {name:<9} {_pct(times[label])} (shipped default, {len(times[label])} rows)"
            )
    return out


def generated_held_out(
    rows: list[dict[str, Any]], benign: list[str], doc_threshold: float, limit: int | None = None
) -> list[str]:
    """Generated prompts and documents from templates the model did not see: fitted with the generated data
    of one half of the templates (``half=0``, plus the dev set and the benign texts), scored on the other
    half. The failure kinds of issue 18, measured on phrasings that were never fitted."""
    prep = training.prepare(
        [r["text"] for r in rows],
        [int(r["label"]) for r in rows],
        [str(r.get("source", "")) for r in rows],
        None,
        training.ORDINARY if limit is None else min(training.ORDINARY, limit),
        benign=benign,
        synthetic_n=training.SYNTHETIC if limit is None else min(training.SYNTHETIC, 4 * limit),
        half=0,
    )
    m = training.fit(prep, np.arange(len(prep.y), dtype=np.int64), doc_threshold)
    det = InjectionDetector(m, None, classifier=False)
    n = 600 if limit is None else min(600, 4 * limit)
    texts, _, kinds = synthetic.direct(n, seed=11, half=1)
    flags = [int(bool((d := det.fast(t)[0]) is not None and d.injection)) for t in texts]
    out = ["injection, generated data from held-out templates (fitted on one half, scored on the other)"]
    for kind in ("hijack", "extraction", "typo", "benign"):
        idx = [i for i, k in enumerate(kinds) if k == kind]
        what = "FPR" if kind == "benign" else "recall"
        out.append(f"  direct {kind:<11} {what} {rate(sum(flags[i] for i in idx), len(idx))} (n={len(idx)})")
    docs, dlabels, _ = synthetic.documents(n, seed=11, half=1)
    dflags = [int(det.document(t).injection) for t in docs]
    pos = [i for i, y in enumerate(dlabels) if y]
    neg = [i for i, y in enumerate(dlabels) if not y]
    out.append(
        f"  tool results: emails with an injected line  recall {rate(sum(dflags[i] for i in pos), len(pos))} "
        f"(n={len(pos)}, document threshold {doc_threshold:.2f})"
    )
    out.append(
        f"  tool results: ordinary business emails      FPR {rate(sum(dflags[i] for i in neg), len(neg))} "
        f"(n={len(neg)})"
    )
    unseen = benign[200:]  # the document model trains on windows of the first 200 only
    if unseen:
        hits = sum(det.document(t).injection for t in unseen)
        out.append(
            f"  tool results: long-form web texts (moderation set, unseen)  FPR {rate(hits, len(unseen))} "
            f"(n={len(unseen)})"
        )
    return out


def _injection_metrics(
    rows: list[dict[str, Any]], y: list[int], preds: list[int], layers: list[str], title: str
) -> list[str]:
    out = [
        f"injection ({len(rows)} rows, {title}",
        f"  overall        {prf(*_counts(preds, y), _per_row(preds, y))}",
    ]
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_source[row["source"]].append(i)
    for src, idx in sorted(by_source.items()):
        pos = [i for i in idx if y[i] == 1]
        neg = [i for i in idx if y[i] == 0]
        parts = []
        if pos:
            parts.append(f"recall {rate(sum(preds[i] for i in pos), len(pos))} (n={len(pos)})")
        if neg:
            parts.append(f"FPR {rate(sum(preds[i] for i in neg), len(neg))} (n={len(neg)})")
        out.append(f"  {src:<14} " + "  ".join(parts))
    out.append("  decided by     " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(layers).items())))
    return out


def missing(datasets: Path, which: str) -> list[str]:
    """The dev-set files an evaluation needs that ``datasets`` lacks (for ``all``: only when it has none)."""
    names = ["injection", "pii", "moderation"] if which == "all" else [which]
    absent = [SETS[n] for n in names if not (datasets / SETS[n]).is_file()]
    return absent if which != "all" or len(absent) == len(names) else []


def run(datasets: Path, which: str, limit: int | None = None, *, classifier: bool = False) -> list[str]:
    """The report lines; with ``all``, the sets ``datasets`` lacks are named and skipped."""
    out: list[str] = []
    for name in ("injection", "pii", "moderation"):
        if which not in ("all", name):
            continue
        path = datasets / SETS[name]
        if not path.is_file():
            out.append(f"{name}: skipped, {path} not found")
            continue
        if name == "injection":
            out += eval_injection(path, limit, classifier=classifier)
        else:
            out += (pii.run if name == "pii" else moderation_eval.run)(path, limit)
    return out
