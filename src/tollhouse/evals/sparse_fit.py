"""Fitting the cheap text models on sparse rows (numpy only): the hashed n-grams stay sparse, the mean
word-piece embedding dense.

A dense [rows x 32,768] matrix costs ~130 kB per row and a full pass per Adam step; the rows hold a few
hundred non-zeros each, so the sparse products make a fit ~50 times cheaper and let the evaluation fit a model
per fold and per threshold choice. Same objective and optimiser as ``training.fit_logreg``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tollhouse.guardrails.features import F32, LEX_DIM, Features, LinearText, piece_embeddings, piece_matrix

I64 = npt.NDArray[np.int64]


@dataclass(slots=True, frozen=True)
class Rows:
    """Rows of features: the lexical part as (row, column, value) triples, the piece part dense."""

    row: I64
    col: I64
    val: F32
    dense: F32  # [n, 384]: mean piece embedding / scale

    @property
    def n(self) -> int:
        return int(self.dense.shape[0])

    def take(self, idx: I64) -> Rows:
        """The rows ``idx`` (in that order), renumbered 0..len(idx)-1."""
        pos = np.full(self.n, -1, dtype=np.int64)
        pos[idx] = np.arange(len(idx))
        if len(np.unique(idx)) != len(idx):
            raise ValueError("row indices must be distinct")
        keep = pos[self.row] >= 0
        return Rows(pos[self.row[keep]], self.col[keep], self.val[keep], self.dense[idx])

    def dot(self, w: F32, b: float) -> F32:
        lex = np.bincount(self.row, weights=self.val * w[self.col], minlength=self.n)  # rows may repeat
        return (lex + self.dense @ w[LEX_DIM:] + b).astype(np.float32)

    def grad(self, g: F32) -> F32:
        lex = np.bincount(self.col, weights=self.val * g[self.row], minlength=LEX_DIM)
        return np.concatenate([lex.astype(np.float32), self.dense.T @ g])


@dataclass(slots=True)
class SparseTexts:
    """The cheap features of some texts, ready to fit any subset of them."""

    norms: list[str]
    rows: Rows
    table: F32
    scale: float

    @classmethod
    def of(cls, norms: list[str], table: F32 | None = None) -> SparseTexts:
        table = piece_embeddings() if table is None else table
        dense, scale = piece_matrix(norms, table)
        rs, cs, vs = [], [], []
        for i, n in enumerate(norms):
            f = Features.of_lexical(n)
            rs.append(np.full(len(f.keys), i, dtype=np.int64))
            cs.append(f.keys)
            vs.append(f.vals)
        rows = Rows(np.concatenate(rs), np.concatenate(cs), np.concatenate(vs).astype(np.float32), dense)
        return cls(norms, rows, table, scale)

    def fit(self, idx: I64, y: I64, weight: npt.NDArray[np.float32] | None = None) -> LinearText:
        w, b = fit_sparse(self.rows.take(idx), y, weight=weight)
        return LinearText.from_fit(w, b, self.table, self.scale)


def fit_sparse(
    x: Rows,
    y: I64,
    *,
    l2: float = 1e-4,
    steps: int = 300,
    lr: float = 0.05,
    weight: npt.NDArray[np.float32] | None = None,
) -> tuple[F32, float]:
    """Class-balanced L2 logistic regression by full-batch Adam; ``weight`` multiplies per-row weights."""
    n = x.n
    pos = max(int(y.sum()), 1)
    sw = np.where(y == 1, n / (2 * pos), n / (2 * max(n - pos, 1))).astype(np.float32)
    if weight is not None:
        sw *= weight
        sw *= np.float32(n / sw.sum())
    w = np.zeros(LEX_DIM + x.dense.shape[1], dtype=np.float32)
    b = 0.0
    m_w, v_w = np.zeros_like(w), np.zeros_like(w)
    m_b = v_b = 0.0
    yf = y.astype(np.float32)
    for t in range(1, steps + 1):
        p = 1 / (1 + np.exp(-np.clip(x.dot(w, b), -30, 30)))
        g = ((p - yf) * sw / np.float32(n)).astype(np.float32)
        gw = x.grad(g) + np.float32(l2) * w
        gb = float(g.sum())
        m_w = 0.9 * m_w + 0.1 * gw
        v_w = 0.999 * v_w + 0.001 * gw * gw
        m_b = 0.9 * m_b + 0.1 * gb
        v_b = 0.999 * v_b + 0.001 * gb * gb
        c1, c2 = 1 - 0.9**t, 1 - 0.999**t
        w -= (lr * (m_w / c1) / (np.sqrt(v_w / c2) + 1e-8)).astype(np.float32)
        b = b - lr * (m_b / c1) / (np.sqrt(v_b / c2) + 1e-8)
    return w, float(b)
