"""``tollhouse eval guardrails``: precision / recall / F1 / FPR of the guardrails on the shared dev sets.

Injection figures are 5-fold cross-validated (every row is scored by a model fitted without it), never
train-set figures. PII is span-level per entity type; moderation scores the lexical unsafe-content rules.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tollhouse.guardrails import training
from tollhouse.guardrails.injection import Encoder, InjectionDetector, InjectionModel
from tollhouse.guardrails.output import unsafe_content
from tollhouse.guardrails.pii import ENTITIES, detect


def _rows(path: Path, limit: int | None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().split("\n") if line.strip()]
    if limit is not None and limit < len(rows):
        step = len(rows) / limit  # an even slice across the file keeps every source represented
        rows = [rows[int(i * step)] for i in range(limit)]
    return rows


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def eval_injection(path: Path, limit: int | None = None, latency_rows: int = 100) -> list[str]:
    rows = _rows(path, limit)
    from tollhouse.embeddings.encoder import SentenceEncoder

    enc = SentenceEncoder()
    prep = training.prepare([r["text"] for r in rows], [int(r["label"]) for r in rows], enc.encode)
    out: list[str] = []
    for classifier in (False, True):
        out += _injection_metrics(rows, prep, classifier)
    # Latency of the shipped detector (all layers, encoder in its worker thread).
    det = InjectionDetector(InjectionModel.load(), Encoder())
    times: list[float] = []

    async def run() -> None:
        await det.detect("warm up the encoder")
        for row in rows[:latency_rows]:
            t0 = time.perf_counter()
            await det.detect(row["text"])
            times.append((time.perf_counter() - t0) * 1000)

    asyncio.run(run())
    assert det.encoder is not None
    det.encoder.close()
    if times:
        out.append(
            f"  latency        p50 {np.percentile(times, 50):.2f} ms  p99 {np.percentile(times, 99):.2f} ms"
            f" (shipped model, {len(times)} rows)"
        )
    return out


def eval_pii(path: Path, limit: int | None = None) -> list[str]:
    rows = _rows(path, limit)
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    unsupported: Counter[str] = Counter()
    times: list[float] = []
    for row in rows:
        text = row["full_text"]
        t0 = time.perf_counter()
        found = detect(text)
        times.append((time.perf_counter() - t0) * 1000)
        gold = [(s["start_position"], s["end_position"], s["entity_type"]) for s in row["spans"]]
        for gs, ge, gt in gold:
            if gt not in ENTITIES:
                unsupported[gt] += 1
                continue
            if any(s.entity == gt and s.start < ge and gs < s.end for s in found):
                tp[gt] += 1
            else:
                fn[gt] += 1
        for s in found:
            if not any(gt == s.entity and s.start < ge and gs < s.end for gs, ge, gt in gold):
                fp[s.entity] += 1
    out = [f"pii ({len(rows)} rows, span-level: same type and overlapping)"]
    for ent in ENTITIES:
        if tp[ent] + fn[ent] == 0:
            out.append(
                f"  {ent:<14} no gold spans in this set; {fp[ent]} detections (counted as false positives)"
            )
            continue
        p, r, f = _prf(tp[ent], fp[ent], fn[ent])
        out.append(
            f"  {ent:<14} precision {p:.3f}  recall {r:.3f}  F1 {f:.3f}  "
            f"(gold {tp[ent] + fn[ent]}, fp {fp[ent]})"
        )
    out.append("  not supported  " + ", ".join(f"{k} {v}" for k, v in unsupported.most_common()))
    out.append(
        f"  latency        p50 {np.percentile(times, 50):.3f} ms  p99 {np.percentile(times, 99):.3f} ms"
    )
    return out


_MOD = {"self-harm": "SH", "violence": "V", "sexual/minors": "S3", "hate": "H"}


def eval_moderation(path: Path, limit: int | None = None) -> list[str]:
    rows = _rows(path, limit)
    guard = unsafe_content("enforce", frozenset({"output"}))
    labels = [guard.find(r["prompt"]) for r in rows]
    out = [f"moderation ({len(rows)} rows, lexical unsafe-content rules)"]
    for cat, key in _MOD.items():
        tp = sum(1 for r, lab in zip(rows, labels, strict=True) if lab == cat and r.get(key) == 1)
        fp = sum(1 for r, lab in zip(rows, labels, strict=True) if lab == cat and r.get(key) == 0)
        fn = sum(1 for r, lab in zip(rows, labels, strict=True) if lab != cat and r.get(key) == 1)
        p, r_, f = _prf(tp, fp, fn)
        out.append(f"  {cat:<14} precision {p:.3f}  recall {r_:.3f}  F1 {f:.3f}  (positives {tp + fn})")
    unsafe = [any(r.get(k) == 1 for k in ("S", "H", "V", "HR", "SH", "S3", "H2", "V2")) for r in rows]
    flagged = [lab is not None for lab in labels]
    tp = sum(a and b for a, b in zip(flagged, unsafe, strict=True))
    fp = sum(a and not b for a, b in zip(flagged, unsafe, strict=True))
    fn = sum(b and not a for a, b in zip(flagged, unsafe, strict=True))
    p, r_, f = _prf(tp, fp, fn)
    out.append(f"  any unsafe     precision {p:.3f}  recall {r_:.3f}  F1 {f:.3f}  (positives {tp + fn})")
    return out


def run(datasets: Path, which: str, limit: int | None = None) -> list[str]:
    out: list[str] = []
    if which in ("all", "injection"):
        out += eval_injection(datasets / "injection" / "dev.jsonl", limit)
    if which in ("all", "pii"):
        out += eval_pii(datasets / "pii" / "dev.jsonl", limit)
    if which in ("all", "moderation"):
        out += eval_moderation(datasets / "moderation" / "dev.jsonl", limit)
    return out


def _injection_metrics(rows: list[dict[str, Any]], prep: Any, classifier: bool) -> list[str]:
    """Out-of-fold metrics for one configuration: rules + lexical model, or with the embedding classifier."""
    folds = 5 if len(rows) >= 50 else 2
    preds, layers = training.cross_validate(prep, folds=folds, classifier=classifier)
    y = prep.y
    tp = sum(1 for p, t in zip(preds, y, strict=True) if p and t)
    fp = sum(1 for p, t in zip(preds, y, strict=True) if p and not t)
    fn = sum(1 for p, t in zip(preds, y, strict=True) if not p and t)
    p, r, f = _prf(tp, fp, fn)
    mode = "rules + lexical + embedding classifier" if classifier else "rules + lexical (default)"
    out = [
        f"injection ({len(rows)} rows, {folds}-fold cross-validation): {mode}",
        f"  overall        precision {p:.3f}  recall {r:.3f}  F1 {f:.3f}",
    ]
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_source[row["source"]].append(i)
    for src, idx in sorted(by_source.items()):
        pos = [i for i in idx if y[i] == 1]
        neg = [i for i in idx if y[i] == 0]
        parts = []
        if pos:
            parts.append(f"recall {sum(preds[i] for i in pos) / len(pos):.3f} (n={len(pos)})")
        if neg:
            parts.append(f"FPR {sum(preds[i] for i in neg) / len(neg):.3f} (n={len(neg)})")
        out.append(f"  {src:<14} " + "  ".join(parts))
    out.append("  decided by     " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(layers).items())))
    return out
