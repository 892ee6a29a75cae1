"""``tollhouse eval guardrails``: precision / recall / F1 / FPR of the guardrails on the shared dev sets.

Model figures are 5-fold cross-validated (every row is scored by a model fitted without it), never
train-set figures; latency is that of the shipped models. Every rate has its 95 % interval (Wilson; F1 by
row bootstrap). PII is ``evals/pii.py``; moderation scores the lexical rules and the classifier.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tollhouse.evals import pii, training
from tollhouse.evals.injection_eval import eval_injection
from tollhouse.evals.report import SETS, f1, prf, rate
from tollhouse.evals.report import rows as _rows
from tollhouse.guardrails.moderation import NAMES, ModerationModel
from tollhouse.guardrails.normalize import normalise
from tollhouse.guardrails.output import UNSAFE, PatternGuard


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


def eval_moderation(path: Path, limit: int | None = None) -> list[str]:
    rows = _rows(path, limit)
    labels: training.Labels = {c: [r.get(c) for r in rows] for c in NAMES}
    gold = [int(v) for v in training.flagged(labels)]
    lexical = PatternGuard("unsafe_content", "enforce", UNSAFE, frozenset({"output"}))
    lex = [int(lexical.find(r["prompt"]) is not None) for r in rows]
    out = [f"moderation ({len(rows)} rows; any category = flagged)"]
    out.append(
        f"  lexical rules  flagged: {prf(*_counts(lex, gold), _per_row(lex, gold))}  (positives {sum(gold)})"
    )
    texts = training.Texts.of([normalise(r["prompt"]) for r in rows])
    folds = 5 if len(rows) >= 50 else 2
    pred, per, probs = training.cross_validate_moderation(texts, labels, folds=folds)
    both = [int(a or b) for a, b in zip(lex, pred, strict=True)]
    out.append(
        f"  rules + classifier ({folds}-fold CV) flagged: {prf(*_counts(both, gold), _per_row(both, gold))}"
    )
    fp = sum(1 for b, g in zip(both, gold, strict=True) if b and not g)
    out.append(f"    false-positive rate on safe rows {rate(fp, len(gold) - sum(gold))}")
    out.append("    " + at_max_fpr(lex, probs, gold, 0.03))
    for cat, (cp, cg) in per.items():
        out.append(
            f"    {cat:<3} {NAMES[cat]:<17} {prf(*_counts(cp, cg))}  "
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


def at_max_fpr(lex: list[int], probs: list[float], gold: list[int], max_fpr: float) -> str:
    """The best F1 over thresholds whose false-positive rate stays ≤ ``max_fpr`` (out-of-fold scores; the
    threshold is chosen on the same rows, so the figure is an optimistic bound)."""
    neg = len(gold) - sum(gold)
    best: tuple[float, float, list[int]] | None = None
    for th in np.arange(0.3, 0.99, 0.02):
        pred = [int(bool(lx) or p >= th) for lx, p in zip(lex, probs, strict=True)]
        tp, fp, fn = _counts(pred, gold)
        if neg and fp / neg <= max_fpr and (best is None or f1(tp, fp, fn) > best[0]):
            best = (f1(tp, fp, fn), float(th), pred)
    if best is None:
        return f"at FPR <= {max_fpr:.0%}: no threshold gets there"
    pred = best[2]
    fp = sum(1 for p, g in zip(pred, gold, strict=True) if p and not g)
    return (
        f"at FPR <= {max_fpr:.0%} (threshold {best[1]:.2f}, chosen on these scores): "
        f"{prf(*_counts(pred, gold), _per_row(pred, gold))}  FPR {rate(fp, neg)}"
    )


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
            out += (pii.run if name == "pii" else eval_moderation)(path, limit)
    return out
