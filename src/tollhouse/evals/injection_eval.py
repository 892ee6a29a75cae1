"""``tollhouse eval injection``: the injection detector on the dev set and on held-out template families.

Every figure of the first two blocks is out-of-fold (``evals/injection_fit.py``): a row is scored by models
fitted without its fold, with thresholds chosen on the training folds; generated rows of fold k come only
from fold k's template families. Then the shipped model on hand-written prompts and user questions it was
never fitted on, and its latency. Rates carry 95 % Wilson intervals; F1 a row-bootstrap interval.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tollhouse.evals import injection_fit, synthetic
from tollhouse.evals.ordinary import HELD_OUT
from tollhouse.evals.report import prf, rate
from tollhouse.evals.report import rows as _rows
from tollhouse.guardrails.injection import MIN_WORDS, InjectionDetector, InjectionModel

KIND_NAMES = {
    "hijack": "curt task switch / hijack",
    "extraction": "hidden instructions asked for as a task",
    "secret": "a password game's secret",
    "typo": "misspelled / obfuscated attack",
    "roleplay": "role-play, fiction, games",
    "trigger": "trigger words in ordinary sentences",
    "switch": "harmless task / format switches",
    "pasted": "requests about pasted text",
}


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


def eval_injection(
    path: Path, limit: int | None = None, latency_rows: int = 300, *, classifier: bool = False
) -> list[str]:
    """``classifier``: also cross-validate the opt-in embedding classifier (encodes every row: minutes)."""
    rows = _rows(path, limit)
    datasets = path.parent.parent
    moderation = datasets / "moderation" / "dev.jsonl"
    longform = [r["prompt"] for r in _rows(moderation, limit)] if moderation.is_file() else []
    embed = None
    if classifier:
        from tollhouse.embeddings.encoder import SentenceEncoder

        embed = SentenceEncoder().encode
    cap = limit if limit is not None else 10**9  # a slice of the dev set: fewer generated rows too
    pool = injection_fit.build(
        [r["text"] for r in rows],
        [int(r["label"]) for r in rows],
        [str(r.get("source", "")) for r in rows],
        longform,
        embed=embed,
        ordinary=min(injection_fit.ORDINARY, cap),
        synthetic_n=min(injection_fit.SYNTHETIC, 4 * cap),
        documents_n=min(injection_fit.DOCUMENTS, 2 * cap),
    )
    cv = injection_fit.cross_validate(pool)
    n = pool.n_dev
    y = [int(v) for v in pool.y[:n]]
    rule = [int(r is not None) for r in pool.rule[:n]]
    out = [f"injection rules alone ({n} rows, fixed): {prf(*_counts(rule, y), _per_row(rule, y))}"]
    ths = ", ".join(f"{a:.3f}/{b:.3f}" for a, b in cv.thresholds)
    out.append(f"thresholds (direct/document) per fold, chosen on its training folds: {ths}")
    shipped = InjectionModel.load()
    out.append(
        f"thresholds picked on all out-of-fold scores: direct {cv.shipped[0]:.3f}, document "
        f"{cv.shipped[1]:.3f} (shipped: {shipped.threshold:.3f}, {shipped.doc_threshold:.3f})"
    )
    configs = [("rules + model (default)", cv.pred)]
    if cv.classifier:
        configs.append(("rules + model + embedding classifier", cv.classifier))
    for name, pred in configs:
        preds = [pred[i] for i in range(n)]
        layers = [
            "rule" if pool.rule[i] else "short" if len(pool.seen[i].split()) < MIN_WORDS else "model"
            for i in range(n)
        ]
        out += _metrics(rows, y, preds, layers, f"5-fold CV): {name}")
        benign = [i for i, g in enumerate(pool.group) if g == "benign"]
        if benign:
            out.append(
                f"  moderation texts (benign long-form, n={len(benign)}, CV): FPR "
                f"{rate(sum(pred[i] for i in benign), len(benign))}"
            )
    out += held_out_families(pool, cv)
    out += shipped_checks(shipped, datasets, limit)
    out += latency(shipped, rows, latency_rows)
    return out


def held_out_families(pool: injection_fit.Pool, cv: injection_fit.CrossValidated) -> list[str]:
    """The failure kinds of issue 18 on generated rows whose template families were never fitted."""
    out = ["injection, generated rows of held-out template families (5 folds of families, out-of-fold)"]
    by_kind: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(pool.group):
        if g in KIND_NAMES:
            by_kind[g].append(i)
    for kind in (*synthetic.ATTACK_KINDS, *synthetic.BENIGN_KINDS):
        idx = by_kind.get(kind, [])
        what = "recall" if kind in synthetic.ATTACK_KINDS else "FPR"
        out.append(
            f"  direct {kind:<10} {what:<6} {rate(sum(cv.pred[i] for i in idx), len(idx))} "
            f"(n={len(idx)}; {KIND_NAMES[kind]})"
        )
    for group, what, name in (
        ("embedded", "recall", "tool results: documents with a line addressed to the assistant"),
        ("content", "FPR", "tool results: ordinary emails, web pages, reviews, search results"),
        ("longform", "FPR", "tool results: long-form web text (moderation set)"),
    ):
        idx = [i for i, g in enumerate(pool.docs_group) if g == group]
        out.append(f"  {name}  {what} {rate(sum(cv.doc_pred[i] for i in idx), len(idx))} (n={len(idx)})")
    return out


def shipped_checks(shipped: InjectionModel, datasets: Path, limit: int | None) -> list[str]:
    """The shipped model on prompts no model was fitted on: hand-written ordinary prompts, user questions."""
    det = InjectionDetector(shipped, None, classifier=False)
    flagged = sum(1 for t in HELD_OUT if (d := det.fast(t)[0]) is not None and d.injection)
    n = len(HELD_OUT)
    out = [f"  ordinary prompts (held out, n={n}): FPR {rate(flagged, n)} (shipped model)"]
    paraphrase = datasets / "paraphrase" / "dev.jsonl"
    if paraphrase.is_file():
        pairs = _rows(paraphrase, limit)
        qs = list(dict.fromkeys([p["q1"] for p in pairs] + [p["q2"] for p in pairs]))
        hits = sum(1 for q in qs if (d := det.fast(q)[0]) is not None and d.injection)
        out.append(
            f"  questions (paraphrase set, never fitted on, n={len(qs)}): FPR {rate(hits, len(qs))} "
            "(shipped model)"
        )
    return out


def latency(shipped: InjectionModel, rows: list[dict[str, Any]], latency_rows: int) -> list[str]:
    """The shipped default detector per text, benign and injection rows apart (cache cleared)."""
    det = InjectionDetector(shipped, None, classifier=False)
    times: dict[int, list[float]] = {0: [], 1: []}
    sample = rows[:: max(1, len(rows) // latency_rows)]

    async def run() -> None:
        await det.detect("warm up")
        for row in sample:
            det._seen.clear()
            t0 = time.perf_counter()
            await det.detect(row["text"])
            times[int(row["label"])].append((time.perf_counter() - t0) * 1000)

    asyncio.run(run())
    out = []
    for label, name in ((0, "benign"), (1, "injection")):
        if times[label]:
            t = times[label]
            out.append(
                f"  latency {name:<9} p50 {np.percentile(t, 50):.3f} ms  p99 {np.percentile(t, 99):.3f} ms "
                f"(shipped default, {len(t)} rows)"
            )
    return out


def _metrics(
    rows: list[dict[str, Any]], y: list[int], preds: list[int], layers: list[str], title: str
) -> list[str]:
    out = [
        f"injection ({len(rows)} rows, {title}",
        f"  overall        {prf(*_counts(preds, y), _per_row(preds, y))}",
    ]
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_source[str(row.get("source", ""))].append(i)
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
