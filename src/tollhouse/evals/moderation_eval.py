"""``tollhouse eval moderation``: the lexical phrases and the classifier on the moderation dev set.

Dev figures are 5-fold cross-validated with the "flagged" thresholds chosen on the training folds only (an
inner CV); per-category figures are the same out-of-fold models' category scores at 0.5 on the rows
labelled for that category. Generated figures: models fitted on the dev set plus data generated from half
the templates, scored on data generated from the other half (phrasings never fitted). Intervals: Wilson
(rates), row bootstrap (F1).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tollhouse.evals import moderation_data, moderation_fit
from tollhouse.evals.report import prf, rate
from tollhouse.evals.report import rows as _rows
from tollhouse.guardrails.features import F32, Features
from tollhouse.guardrails.moderation import EMB_CHARS, HEADS, NAMES, ModerationModel
from tollhouse.guardrails.normalize import normalise
from tollhouse.guardrails.output import UNSAFE, PatternGuard

# Everyday texts in phrasings the generator does not produce; never fitted on.
EVERYDAY = [
    "Have a nice weekend!",
    "I love my cat",
    "See you at lunch.",
    "Thanks for the quick reply, that fixed it.",
    "Can you move our call to 3pm?",
    "The kids are finally asleep.",
    "This pasta recipe is amazing, thank you!",
    "Happy new year to you and your family!",
    "My flight got delayed again, ugh.",
    "Don't forget to water the plants.",
    "We won the quiz night!",
    "I killed it at the interview today.",
]


def counts(pred: list[int], gold: list[int]) -> tuple[int, int, int, list[tuple[int, int, int]]]:
    per = [
        (int(bool(p and g)), int(bool(p and not g)), int(bool(g and not p)))
        for p, g in zip(pred, gold, strict=True)
    ]
    return sum(r[0] for r in per), sum(r[1] for r in per), sum(r[2] for r in per), per


def run(path: Path, limit: int | None = None, folds: int = 5) -> list[str]:
    from tollhouse.embeddings.onnx_encoder import OnnxSentenceEncoder

    enc = OnnxSentenceEncoder()

    def embed(texts: list[str]) -> F32:
        return enc.encode([t[:EMB_CHARS] for t in texts])

    rows = _rows(path, limit)
    folds = folds if len(rows) >= 50 else 2
    p = moderation_fit.prepare(rows, embed)
    gold = [int(v) for v in p.y[: p.n]]
    neg = len(gold) - sum(gold)
    lexical = PatternGuard("unsafe_content", "enforce", UNSAFE, frozenset({"output"}))
    lex = [int(lexical.find(str(r["prompt"])) is not None) for r in rows]
    out = [f"moderation ({len(rows)} rows, {sum(gold)} flagged in any category; {folds}-fold CV)"]
    tp, fp, fn, per = counts(lex, gold)
    out.append(f"  lexical phrases alone      flagged: {prf(tp, fp, fn, per)}  FPR {rate(fp, neg)}")
    cv = moderation_fit.cross_validate(p, folds)
    both = [int(a or b) for a, b in zip(lex, cv.pred, strict=True)]
    tp, fp, fn, per = counts(both, gold)
    ths = "; ".join("/".join(f"{v:.3g}" for v in t) for t in cv.thresholds)
    out.append(f"  phrases + classifier       flagged: {prf(tp, fp, fn, per)}  FPR {rate(fp, neg)}")
    out.append(
        f"    thresholds long cheap/head, short head/cheap/agree, per fold (chosen on training folds): {ths}"
    )
    for name, scores in (("cheap model alone", cv.cheap), ("encoder head alone", cv.emb)):
        out.append(f"    {name:<19} at FPR <= 3 % on the scored rows (optimistic): {_best(scores, gold)}")
    for code in HEADS:
        labelled = [i for i in range(p.n) if p.labels[code][i] is not None]
        cg = [int(p.labels[code][i] or 0) for i in labelled]
        if sum(cg) < 2:
            continue
        cp = [int(cv.categories[i].get(code, 0.0) >= 0.5) for i in labelled]
        tp, fp, fn, per = counts(cp, cg)
        out.append(
            f"    {code:<3} {NAMES[code]:<17} {prf(tp, fp, fn, per)}  (positives {sum(cg)} of {len(cg)})"
        )
    out += _generated(rows, embed, cv.thresholds)
    model = ModerationModel.load()
    flagged = sum(model.category(t) is not None for t in EVERYDAY)
    out.append(
        f"  everyday texts (hand-written, never fitted), shipped model: FPR {rate(flagged, len(EVERYDAY))}"
    )
    times = []
    for row in rows[:200]:
        t0 = time.perf_counter()
        model.category(str(row["prompt"]))
        times.append((time.perf_counter() - t0) * 1000)
    out.append(
        f"  latency        p50 {np.percentile(times, 50):.2f} ms  p99 {np.percentile(times, 99):.2f} ms "
        "(shipped classifier, encoder included)"
    )
    return out


def best_at_fpr(scores: Sequence[float], gold: Sequence[int], none: float = 1.0) -> tuple[float, float]:
    """(F1, threshold): the best F1 whose false-positive rate on these rows is ≤ 3 %; ``none`` is the
    threshold when no threshold qualifies."""
    s, y = np.asarray(scores), np.asarray(gold)
    best = (0.0, none)
    for th in np.unique(s):
        pred = s >= th
        tp, fp = int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum())
        fn = int((~pred & (y == 1)).sum())
        if fp <= 0.03 * (y == 0).sum() and 2 * tp / max(2 * tp + fp + fn, 1) > best[0]:
            best = (2 * tp / max(2 * tp + fp + fn, 1), float(th))
    return best


def _best(scores: list[float], gold: list[int]) -> str:
    f1, th = best_at_fpr(scores, gold)
    return f"F1 {f1:.3f} (threshold {th:.3f})"


def _generated(
    rows: list[dict[str, object]], embed: object, thresholds: list[moderation_fit.Thresholds]
) -> list[str]:
    """Fit on dev + templates of half 0; score rows generated from half 1 (another seed)."""
    assert callable(embed)
    p = moderation_fit.prepare(rows, embed, half=0)
    t = tuple(float(np.median([x[j] for x in thresholds])) for j in range(5))
    m = moderation_fit.fit(p, np.arange(p.n, dtype=np.int64), t)  # type: ignore[arg-type]
    held = moderation_data.generate(1000, seed=7, half=1)
    vecs = embed([t for t, _ in held])
    scored = [
        m.scores_of(Features.of(normalise(x)), v, len(x.split()))
        for (x, _), v in zip(held, vecs, strict=True)
    ]
    out = [f"  generated, held-out templates (n={len(held)}; the folds' median thresholds)"]
    benign = [i for i, (_, lab) in enumerate(held) if all(v == 0 for v in lab.values())]
    fp = sum(m.is_flagged(scored[i]) for i in benign)
    out.append(f"    benign look-alikes        FPR {rate(fp, len(benign))}")
    for code in HEADS:
        pos = [i for i, (_, lab) in enumerate(held) if lab.get(code) == 1]
        if not pos:
            continue
        hit = sum(m.is_flagged(scored[i]) for i in pos)
        named = sum(scored[i].categories.get(code, 0.0) >= 0.5 for i in pos)
        out.append(
            f"    {code:<3} {NAMES[code]:<17} flagged {rate(hit, len(pos))}  "
            f"category named {rate(named, len(pos))} (n={len(pos)})"
        )
    return out
