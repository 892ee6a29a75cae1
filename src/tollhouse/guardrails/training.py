"""Fitting and cross-validating the injection classifier (numpy only). Used by ``bench/train_injection.py``
and ``tollhouse eval guardrails``; the runtime only loads the fitted weights."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tollhouse.guardrails.injection import F32, InjectionModel, all_views, lexical_matrix, rule_hit

LEX_LOW, LEX_HIGH, THRESHOLD = 0.2, 0.92, 0.6


def fit_logreg(
    x: F32, y: npt.NDArray[np.int64], *, l2: float, steps: int = 300, lr: float = 0.05
) -> tuple[F32, float]:
    """Class-balanced L2 logistic regression by full-batch Adam. Returns (weights, bias)."""
    n, d = x.shape
    pos = max(int(y.sum()), 1)
    sw = np.where(y == 1, n / (2 * pos), n / (2 * max(n - pos, 1))).astype(np.float32)
    w = np.zeros(d, dtype=np.float32)
    b = np.float32(0.0)
    m_w, v_w = np.zeros_like(w), np.zeros_like(w)
    m_b = v_b = 0.0
    yf = y.astype(np.float32)
    for t in range(1, steps + 1):
        p = (1 / (1 + np.exp(-np.clip(x @ w + b, -30, 30)))).astype(np.float32)
        g = ((p - yf) * sw / np.float32(n)).astype(np.float32)
        gw = x.T @ g + np.float32(l2) * w
        gb = float(g.sum())
        m_w = 0.9 * m_w + 0.1 * gw
        v_w = 0.999 * v_w + 0.001 * gw * gw
        m_b = 0.9 * m_b + 0.1 * gb
        v_b = 0.999 * v_b + 0.001 * gb * gb
        c1, c2 = 1 - 0.9**t, 1 - 0.999**t
        w -= (lr * (m_w / c1) / (np.sqrt(v_w / c2) + 1e-8)).astype(np.float32)
        b = np.float32(b - lr * (m_b / c1) / (np.sqrt(v_b / c2) + 1e-8))
    return w, float(b)


@dataclass(slots=True)
class Prepared:
    """Per-row inputs: the text the models read, whether a rule fired, lexical features, embeddings."""

    seen: list[str]
    rule: list[str | None]
    lex: F32
    emb: F32
    y: npt.NDArray[np.int64]


def prepare(texts: list[str], labels: list[int], embed: Callable[[list[str]], F32]) -> Prepared:
    seen: list[str] = []
    rules: list[str | None] = []
    for t in texts:
        norm, extra = all_views(t)
        hit = next((h for h in (rule_hit(v) for v in (norm, *extra)) if h is not None), None)
        rules.append(hit)
        seen.append(" ".join([norm, *extra[:-1]]))
    return Prepared(seen, rules, lexical_matrix(seen), embed(seen), np.asarray(labels, dtype=np.int64))


def fit(p: Prepared, idx: npt.NDArray[np.int64]) -> InjectionModel:
    lw, lb = fit_logreg(p.lex[idx], p.y[idx], l2=1e-4)
    ew, eb = fit_logreg(p.emb[idx], p.y[idx], l2=1e-4, steps=500)
    return InjectionModel(lw, lb, ew, eb, LEX_LOW, LEX_HIGH, THRESHOLD)


def predict(m: InjectionModel, p: Prepared, i: int, classifier: bool = True) -> tuple[int, str]:
    """(prediction, deciding layer) for row i, exactly as ``InjectionDetector`` decides."""
    if p.rule[i] is not None:
        return 1, "rule"
    pl = m.lex_prob(p.seen[i])
    if not classifier:
        return int(pl >= m.lex_high), "lexical"
    if pl <= m.lex_low or pl >= m.lex_high:
        return int(pl >= m.lex_high), "lexical"
    return int(m.combine(pl, m.emb_prob(p.emb[i]))), "classifier"


def cross_validate(
    p: Prepared, folds: int = 5, seed: int = 0, classifier: bool = True
) -> tuple[list[int], list[str]]:
    """Stratified k-fold out-of-fold predictions: every row is predicted by a model that never saw it."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(p.y), dtype=np.int64)
    for label in (0, 1):
        rows = np.flatnonzero(p.y == label)
        rng.shuffle(rows)
        fold[rows] = np.arange(len(rows)) % folds
    preds = [0] * len(p.y)
    layers = [""] * len(p.y)
    for k in range(folds):
        m = fit(p, np.flatnonzero(fold != k))
        for i in np.flatnonzero(fold == k):
            preds[i], layers[i] = predict(m, p, int(i), classifier)
    return preds, layers


def save(m: InjectionModel, path: str) -> None:
    np.savez_compressed(
        path,
        lex_w=m.lex_w.astype(np.float16),
        lex_b=np.float32(m.lex_b),
        emb_w=m.emb_w,
        emb_b=np.float32(m.emb_b),
        lex_low=np.float32(m.lex_low),
        lex_high=np.float32(m.lex_high),
        threshold=np.float32(m.threshold),
    )
