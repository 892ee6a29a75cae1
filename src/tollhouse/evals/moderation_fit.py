"""Fitting and cross-validating the moderation classifier (numpy only; ADR 0029).

The cheap models (``flagged`` and the per-category ones) learn from the dev rows; the encoder heads learn
from the dev rows plus generated rows (``evals/moderation_data.py``: per-category texts and benign
look-alikes, weighted 1). Five thresholds decide "flagged" (``ModerationModel.is_flagged``): long texts
cheap ≥ t1 or head ≥ t2; short texts head ≥ ts, or cheap ≥ t1s while head ≥ ta. The set with the best F1
whose false-positive rate on safe dev rows is ≤ 3 % is chosen on out-of-fold scores of the rows a model is
fitted on — in cross-validation by an inner CV on the training folds only, never on the scored fold.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tollhouse.evals import moderation_data
from tollhouse.evals.moderation_data import Half
from tollhouse.evals.training import Texts, fit_logreg, folds_of
from tollhouse.guardrails.features import F32, Features, LinearText
from tollhouse.guardrails.moderation import CATEGORIES, HEADS, SHORT_WORDS, ModerationModel
from tollhouse.guardrails.normalize import normalise

I64 = npt.NDArray[np.int64]
Labels = dict[str, list[int | None]]  # category code → per-row 1 / 0 / None (unknown)
GENERATED = 1500  # generated rows in every fit (half unsafe)
EMB_L2 = 1e-2
MAX_FPR = 0.03
GRID1 = np.round(np.arange(0.5, 0.99, 0.02), 2)  # cheap "flagged" thresholds
GRID2 = np.asarray([0.95, 0.98, 0.99, 0.995, 0.998, 1.01])  # head thresholds, long texts (1.01: off)
GRID_S = np.asarray([0.7, 0.8, 0.9, 0.95, 0.98])  # head thresholds, short texts
GRID_S1 = np.asarray([0.8, 0.9, 0.95, 0.98, 1.01])  # cheap thresholds, short texts
GRID_A = np.asarray([0.3, 0.5])  # head agreement for a short text (at 0.1 "I love my cat" is flagged)
Thresholds = tuple[float, float, float, float, float]  # t1, t2, ts, t1s, ta


def flagged(labels: Labels) -> I64:
    n = len(next(iter(labels.values())))
    return np.asarray([int(any(labels[c][i] == 1 for c in labels)) for i in range(n)], dtype=np.int64)


@dataclass(slots=True)
class Prepared:
    """Dev rows (first ``n``: cheap features and encoder vectors) and generated rows (vectors, labels)."""

    texts: Texts
    emb: F32  # dev rows, then generated rows
    labels: Labels  # per head code, dev rows then generated rows
    y: I64  # "flagged", dev rows then generated rows
    n: int
    short: npt.NDArray[np.bool_]  # dev rows under SHORT_WORDS words


def prepare(
    rows: list[dict[str, object]],
    embed: Callable[[list[str]], F32],
    *,
    generated: int = GENERATED,
    half: Half = None,
    seed: int = 1,
) -> Prepared:
    gen = moderation_data.generate(generated, seed, half) if generated else []
    dev_texts = [str(r["prompt"]) for r in rows]
    labels: Labels = {}
    for c in HEADS:
        dev = [None if r.get(c) is None else int(r[c]) for r in rows]  # type: ignore[call-overload]
        labels[c] = [*dev, *(g[1].get(c) for g in gen)]
    texts = Texts.of([normalise(t) for t in dev_texts])
    emb = embed([*dev_texts, *(t for t, _ in gen)])
    short = np.asarray([len(t.split()) < SHORT_WORDS for t in dev_texts], dtype=np.bool_)
    return Prepared(texts, emb, labels, flagged(labels), len(rows), short)


def _known(labels: list[int | None], idx: I64) -> tuple[I64, I64]:
    rows = np.asarray([i for i in idx if labels[i] is not None], dtype=np.int64)
    return rows, np.asarray([labels[i] for i in rows], dtype=np.int64)


def _heads(p: Prepared, idx: I64) -> tuple[F32, F32]:
    """Logistic heads over the encoder vectors (standardised, folded back into raw weights)."""
    x = p.emb[idx]
    mu, sd = x.mean(axis=0), x.std(axis=0) + np.float32(1e-6)
    ws, bs = [], []
    for rows, yy in [(idx, p.y[idx]), *(_known(p.labels[c], idx) for c in HEADS)]:
        if yy.sum() == 0 or yy.sum() == len(yy):
            ws.append(np.zeros(x.shape[1], dtype=np.float32))
            bs.append(-30.0 if yy.sum() == 0 else 30.0)
            continue
        w, b = fit_logreg(((p.emb[rows] - mu) / sd).astype(np.float32), yy, l2=EMB_L2, steps=500)
        ws.append(w / sd)
        bs.append(b - float((mu / sd) @ w))
    return np.stack(ws, axis=1).astype(np.float32), np.asarray(bs, dtype=np.float32)


def fit(
    p: Prepared, idx: I64, t: Thresholds = (0.74, 1.01, 1.01, 0.74, 0.0), *, categories: bool = True
) -> ModerationModel:
    """The models on dev rows ``idx`` plus every generated row."""
    dev = idx[idx < p.n]
    cheap = p.texts.fit(dev, p.y[dev])
    cats: dict[str, LinearText] = {}
    for c in CATEGORIES if categories else ():
        rows, yc = _known(p.labels[c], dev)
        if yc.sum() > 0:
            cats[c] = p.texts.fit(rows, yc)
    w, b = _heads(p, np.concatenate([dev, np.arange(p.n, len(p.y), dtype=np.int64)]))
    return ModerationModel(cheap, cats, t[0], w, b, HEADS, *t[1:])


def score(m: ModerationModel, p: Prepared, i: int) -> tuple[float, float, dict[str, float]]:
    s = m.scores_of(Features.of(p.texts.norms[i]), p.emb[i], SHORT_WORDS - 1 if p.short[i] else SHORT_WORDS)
    return s.cheap, s.emb, s.categories


def decide(t: Thresholds, cheap: F32, emb: F32, short: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """``ModerationModel.is_flagged`` over arrays of scores."""
    long_hit = (cheap >= t[0]) | (emb >= t[1])
    short_hit = (emb >= t[2]) | ((cheap >= t[3]) & (emb >= t[4]))
    out: npt.NDArray[np.bool_] = np.where(short, short_hit, long_hit)
    return out


def pick(cheap: F32, emb: F32, short: npt.NDArray[np.bool_], y: I64, max_fpr: float = MAX_FPR) -> Thresholds:
    """The thresholds with the best F1 at a false-positive rate ≤ ``max_fpr`` on these scores."""
    best: tuple[float, Thresholds] = (-1.0, (0.98, 1.01, 1.01, 1.01, 1.01))
    neg = max(int((y == 0).sum()), 1)
    for t in itertools.product(GRID1, GRID2, GRID_S, GRID_S1, GRID_A):
        pred = decide(t, cheap, emb, short)
        tp = int((pred & (y == 1)).sum())
        fp = int((pred & (y == 0)).sum())
        fn = int((~pred & (y == 1)).sum())
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        if fp / neg <= max_fpr and f1 > best[0]:
            best = (f1, tuple(float(v) for v in t))  # type: ignore[assignment]
    return best[1]


def oof_scores(p: Prepared, idx: I64, folds: int, seed: int = 0) -> tuple[F32, F32]:
    """Out-of-fold (cheap, head) "flagged" scores of the dev rows ``idx``, by a CV over ``idx`` alone."""
    fold = folds_of(p.y[idx], folds, seed)
    cheap = np.zeros(len(idx), dtype=np.float32)
    emb = np.zeros(len(idx), dtype=np.float32)
    for k in range(folds):
        m = fit(p, idx[fold != k], categories=False)
        for j in np.flatnonzero(fold == k):
            cheap[j], emb[j], _ = score(m, p, int(idx[j]))
    return cheap, emb


@dataclass(slots=True)
class CV:
    pred: list[int]  # flagged, out-of-fold, at thresholds chosen on the training folds
    cheap: list[float]
    emb: list[float]
    categories: list[dict[str, float]]
    thresholds: list[Thresholds]  # per outer fold


def cross_validate(p: Prepared, folds: int = 5, seed: int = 0) -> CV:
    y = p.y[: p.n]
    fold = folds_of(y, folds, seed)
    out = CV([0] * p.n, [0.0] * p.n, [0.0] * p.n, [{} for _ in range(p.n)], [])
    for k in range(folds):
        train = np.flatnonzero(fold != k)
        ic, ie = oof_scores(p, train, max(2, folds - 1), seed + 1)
        t = pick(ic, ie, p.short[train], y[train])
        out.thresholds.append(t)
        m = fit(p, train, t)
        for i in np.flatnonzero(fold == k):
            c, e, cats = score(m, p, int(i))
            out.cheap[i], out.emb[i], out.categories[i] = c, e, cats
            out.pred[i] = int(
                decide(t, np.asarray([c], np.float32), np.asarray([e], np.float32), p.short[i : i + 1])[0]
            )
    return out


def fit_shipped(p: Prepared, folds: int = 5) -> ModerationModel:
    """Thresholds from a CV over all dev rows, then every model on all rows."""
    idx = np.arange(p.n, dtype=np.int64)
    c, e = oof_scores(p, idx, folds)
    return fit(p, idx, pick(c, e, p.short, p.y[: p.n]))
