"""Fitting and cross-validating the injection models (numpy only; moderation: ``moderation_fit``).

Used by ``evals/injection_fit.py`` and ``tollhouse eval guardrails``; the
runtime only loads the fitted weights. Hyperparameters were chosen by 5-fold CV on three fold splits
(ADR 0010); every figure the eval reports is out-of-fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tollhouse.guardrails.features import F32, LinearText, lexical_matrix, piece_embeddings, piece_matrix

I64 = npt.NDArray[np.int64]
L2 = 1e-4
BAND = (0.45, 0.85)  # cheap probabilities re-scored by the embedding LR when the classifier is on


def fit_logreg(
    x: F32,
    y: I64,
    *,
    l2: float,
    steps: int = 300,
    lr: float = 0.05,
    weight: npt.NDArray[np.float32] | None = None,
) -> tuple[F32, float]:
    """Class-balanced L2 logistic regression by full-batch Adam; ``weight`` multiplies per-row weights."""
    n, d = x.shape
    pos = max(int(y.sum()), 1)
    sw = np.where(y == 1, n / (2 * pos), n / (2 * max(n - pos, 1))).astype(np.float32)
    if weight is not None:
        sw *= weight
        sw *= np.float32(n / sw.sum())
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
class Texts:
    """The cheap features of some texts: [hashed n-grams | mean piece embedding / scale]."""

    norms: list[str]
    x: F32
    table: F32
    scale: float

    @classmethod
    def of(cls, norms: list[str]) -> Texts:
        table = piece_embeddings()
        pieces, scale = piece_matrix(norms, table)
        return cls(norms, np.hstack([lexical_matrix(norms), pieces]), table, scale)

    def fit(self, idx: I64, y: I64, weight: npt.NDArray[np.float32] | None = None) -> LinearText:
        w, b = fit_logreg(self.x[idx], y, l2=L2, weight=weight)
        return LinearText.from_fit(w, b, self.table, self.scale)


def folds_of(y: I64, folds: int, seed: int = 0) -> I64:
    """Stratified fold number of each row."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for label in (0, 1):
        rows = np.flatnonzero(y == label)
        rng.shuffle(rows)
        fold[rows] = np.arange(len(rows)) % folds
    return fold
