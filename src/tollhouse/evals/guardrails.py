"""``tollhouse eval guardrails``: precision / recall / F1 / FPR of the guardrails on the shared dev sets.

Model figures are 5-fold cross-validated (every row is scored by a model fitted without it), never
train-set figures; latency is that of the shipped models. PII is span-level per entity type (plus the
opt-in NER detector when installed); moderation scores the lexical rules and the classifier.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tollhouse.evals import training
from tollhouse.evals.ordinary import HELD_OUT
from tollhouse.guardrails.injection import InjectionDetector, InjectionModel
from tollhouse.guardrails.moderation import NAMES, ModerationModel
from tollhouse.guardrails.ner import NER_TYPES, NERDetector
from tollhouse.guardrails.normalize import normalise
from tollhouse.guardrails.output import UNSAFE, PatternGuard
from tollhouse.guardrails.pii import ENTITIES, Span, detect


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


def _counts(pred: list[int], gold: list[int]) -> tuple[int, int, int]:
    tp = sum(1 for p, t in zip(pred, gold, strict=True) if p and t)
    fp = sum(1 for p, t in zip(pred, gold, strict=True) if p and not t)
    fn = sum(1 for p, t in zip(pred, gold, strict=True) if not p and t)
    return tp, fp, fn


def _pct(times: list[float]) -> str:
    return f"p50 {np.percentile(times, 50):.3f} ms  p99 {np.percentile(times, 99):.3f} ms"


def eval_injection(path: Path, limit: int | None = None, latency_rows: int = 300) -> list[str]:
    rows = _rows(path, limit)
    from tollhouse.embeddings.encoder import SentenceEncoder

    datasets = path.parent.parent
    moderation = datasets / "moderation" / "dev.jsonl"
    benign = [r["prompt"] for r in _rows(moderation, limit)] if moderation.is_file() else []
    prep = training.prepare(
        [r["text"] for r in rows],
        [int(r["label"]) for r in rows],
        [str(r.get("source", "")) for r in rows],
        SentenceEncoder().encode,
        training.ORDINARY if limit is None else min(training.ORDINARY, limit),  # a slice: fewer extras
        benign=benign,
    )
    folds = 5 if len(rows) >= 50 else 2
    cv = training.cross_validate(prep, folds=folds, classifiers=(False, True))
    out: list[str] = []
    y = [int(v) for v in prep.y[: prep.n]]
    rule = [int(r is not None) for r in prep.rule[: prep.n]]
    tp, fp, fn = _counts(rule, y)
    p, r, f = _prf(tp, fp, fn)
    out.append(
        f"injection rules alone ({len(rows)} rows, fixed): precision {p:.3f}  recall {r:.3f}  F1 {f:.3f}"
    )
    for classifier in (False, True):
        mode = "rules + model + embedding classifier" if classifier else "rules + model (default)"
        preds, layers = cv[classifier]
        title = f"{folds}-fold cross-validation): {mode}"
        out += _injection_metrics(rows, y, preds[: prep.n], layers[: prep.n], title)
        if benign:
            fpr = sum(preds[prep.n :]) / len(benign)
            out.append(f"  moderation texts (benign long-form, n={len(benign)}, CV): FPR {fpr:.3f}")
    # Ordinary prompts written apart from the generated ones; the shipped model never saw them.
    det = InjectionDetector(InjectionModel.load(), None, classifier=False)
    flagged = sum(1 for t in HELD_OUT if (d := det.fast(t)[0]) is not None and d.injection)
    out.append(
        f"  ordinary prompts (held out, n={len(HELD_OUT)}): FPR {flagged / len(HELD_OUT):.3f} (shipped model)"
    )
    paraphrase = datasets / "paraphrase" / "dev.jsonl"
    if paraphrase.is_file():  # user questions no model was fitted on
        pairs = _rows(paraphrase, limit)
        qs = list(dict.fromkeys([p["q1"] for p in pairs] + [p["q2"] for p in pairs]))
        hits = sum(1 for q in qs if (d := det.fast(q)[0]) is not None and d.injection)
        out.append(
            f"  questions (paraphrase set, never fitted on, n={len(qs)}): FPR {hits / len(qs):.3f} "
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


def _injection_metrics(
    rows: list[dict[str, Any]], y: list[int], preds: list[int], layers: list[str], title: str
) -> list[str]:
    p, r, f = _prf(*_counts(preds, y))
    out = [
        f"injection ({len(rows)} rows, {title}",
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


def _span_counts(
    rows: list[dict[str, Any]], find: Any, types: dict[str, str]
) -> tuple[Counter[str], Counter[str], Counter[str], list[float]]:
    """tp / fp / fn per type (same type, overlapping span); ``types`` maps gold types to detector types."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    times: list[float] = []
    for row in rows:
        text = row["full_text"]
        t0 = time.perf_counter()
        found: list[Span] = find(text)
        times.append((time.perf_counter() - t0) * 1000)
        gold = [(s["start_position"], s["end_position"], s["entity_type"]) for s in row["spans"]]
        for gs, ge, gt in gold:
            if gt not in types:
                continue
            hit = any(s.entity == types[gt] and s.start < ge and gs < s.end for s in found)
            (tp if hit else fn)[gt] += 1
        for s in found:
            if not any(types.get(gt) == s.entity and s.start < ge and gs < s.end for gs, ge, gt in gold):
                fp[next((g for g, d in types.items() if d == s.entity), s.entity)] += 1
    return tp, fp, fn, times


_IBAN_FORMATS = {  # country: BBAN layout (a = letter, 9 = digit), from the ISO 13616 registry
    "DE": "9" * 18, "GB": "aaaa" + "9" * 14, "FR": "9" * 23, "ES": "9" * 20, "IT": "a" + "9" * 22,
    "NL": "aaaa" + "9" * 10, "BE": "9" * 12, "CH": "9" * 17, "AT": "9" * 16, "PL": "9" * 24,
    "PT": "9" * 21, "SE": "9" * 20, "NO": "9" * 11, "DK": "9" * 14, "IE": "aaaa" + "9" * 14,
}  # fmt: skip


def synthetic_ibans(n: int = 300, seed: int = 0) -> list[tuple[str, int, int]]:
    """Sentences holding a valid IBAN (compact or grouped by four), with the IBAN's span: the dev set has
    none, so IBAN recall is measured on these."""
    import random

    rng = random.Random(seed)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    frames = ["Please wire it to {}.", "IBAN: {}", "My account is {} (Sparkasse).", "Send to {}, thanks!"]
    out = []
    for _ in range(n):
        cc, layout = rng.choice(list(_IBAN_FORMATS.items()))
        bban = "".join(rng.choice(letters) if c == "a" else rng.choice("0123456789") for c in layout)
        num = int("".join(str(int(c, 36)) for c in bban + cc + "00"))
        iban = f"{cc}{98 - num % 97:02d}{bban}"
        if rng.random() < 0.5:
            iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
        frame = rng.choice(frames)
        start = frame.index("{}")
        out.append((frame.format(iban), start, start + len(iban)))
    return out


def eval_pii(path: Path, limit: int | None = None) -> list[str]:
    rows = _rows(path, limit)
    tp, fp, fn, times = _span_counts(rows, detect, {e: e for e in ENTITIES})
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
    ibans = synthetic_ibans()
    found = sum(
        1
        for text, a, b in ibans
        if any(sp.entity == "IBAN_CODE" and sp.start < b and a < sp.end for sp in detect(text))
    )
    out.append(
        f"  IBAN_CODE      recall {found / len(ibans):.3f} on {len(ibans)} synthetic valid IBANs "
        "(15 countries)"
    )
    out.append(f"  latency        {_pct(times)}")
    gold_types = Counter(s["entity_type"] for row in rows for s in row["spans"])
    ner = NERDetector.available()
    if ner is None:
        out.append("  NER (opt-in)   not installed (pip install 'tollhouse[ner]'); not measured")
    else:
        ntp, nfp, nfn, ntimes = _span_counts(rows, ner.spans, NER_TYPES)
        for gt in NER_TYPES:
            p, r, f = _prf(ntp[gt], nfp[gt], nfn[gt])
            out.append(
                f"  {gt:<14} precision {p:.3f}  recall {r:.3f}  F1 {f:.3f}  (gold {ntp[gt] + nfn[gt]}, "
                f"fp {nfp[gt]}; NER {NER_TYPES[gt]})"
            )
        out.append(f"  NER latency    {_pct(ntimes)}")
    covered = set(ENTITIES) | (set(NER_TYPES) if ner is not None else set())
    missing = [(k, v) for k, v in gold_types.most_common() if k not in covered]
    out.append("  not supported  " + ", ".join(f"{k} {v}" for k, v in missing))
    return out


def eval_moderation(path: Path, limit: int | None = None) -> list[str]:
    rows = _rows(path, limit)
    labels: training.Labels = {c: [r.get(c) for r in rows] for c in NAMES}
    gold = [int(v) for v in training.flagged(labels)]
    lexical = PatternGuard("unsafe_content", "enforce", UNSAFE, frozenset({"output"}))
    lex = [int(lexical.find(r["prompt"]) is not None) for r in rows]
    out = [f"moderation ({len(rows)} rows; any category = flagged)"]
    p, r, f = _prf(*_counts(lex, gold))
    out.append(
        f"  lexical rules  flagged: precision {p:.3f}  recall {r:.3f}  F1 {f:.3f}  (positives {sum(gold)})"
    )
    texts = training.Texts.of([normalise(r["prompt"]) for r in rows])
    folds = 5 if len(rows) >= 50 else 2
    pred, per = training.cross_validate_moderation(texts, labels, folds=folds)
    both = [int(a or b) for a, b in zip(lex, pred, strict=True)]
    p, r, f = _prf(*_counts(both, gold))
    out.append(
        f"  rules + classifier ({folds}-fold CV) flagged: precision {p:.3f}  recall {r:.3f}  F1 {f:.3f}"
    )
    fpr = sum(1 for b, g in zip(both, gold, strict=True) if b and not g) / max(1, len(gold) - sum(gold))
    out.append(f"    false-positive rate on safe rows {fpr:.3f}")
    for cat, (cp, cg) in per.items():
        p, r, f = _prf(*_counts(cp, cg))
        out.append(
            f"    {cat:<3} {NAMES[cat]:<17} precision {p:.3f}  recall {r:.3f}  F1 {f:.3f}  "
            f"(positives {sum(cg)} of {len(cg)} labelled)"
        )
    model = ModerationModel.load()
    times = []
    for row in rows[:200]:
        t0 = time.perf_counter()
        model.category(row["prompt"])
        times.append((time.perf_counter() - t0) * 1000)
    out.append(f"  latency        {_pct(times)} (shipped classifier)")
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
