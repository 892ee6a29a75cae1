"""Fitting and cross-validating the injection and moderation models (numpy only).

Used by ``bench/train_injection.py``, ``bench/train_moderation.py`` and ``tollhouse eval guardrails``; the
runtime only loads the fitted weights. Hyperparameters were chosen by 5-fold CV on three fold splits
(ADR 0010); every figure the eval reports is out-of-fold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tollhouse.evals.ordinary import generate
from tollhouse.guardrails.features import F32, LinearText, lexical_matrix, piece_embeddings, piece_matrix
from tollhouse.guardrails.injection import MIN_WORDS, InjectionModel, all_views, rule_hit
from tollhouse.guardrails.moderation import CATEGORIES, ModerationModel

I64 = npt.NDArray[np.int64]
L2 = 1e-4
HARD_SOURCES = frozenset({"notinject", "xstest-safe"})  # benign look-alikes
HARD_WEIGHT = 3.0  # their weight in the loss, on top of class balancing
THRESHOLD = 0.55
ORDINARY = 400  # generated benign task prompts added to every training fold (guardrails/ordinary.py)
BAND = (0.45, 0.85)  # cheap probabilities re-scored by the embedding LR when the classifier is on
MOD_THRESHOLD = 0.5


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


# ---- injection ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Prepared:
    """Per-row inputs: the text the models read, whether a rule fired, features, embeddings, weights. The
    first ``n`` rows are the dev set, then extra benign texts up to ``scored`` (cross-validated like the dev
    set, reported apart), then generated ordinary prompts (always trained on, never scored)."""

    seen: list[str]
    rule: list[str | None]
    texts: Texts
    emb: F32 | None
    y: I64
    weight: npt.NDArray[np.float32]
    n: int
    scored: int


def prepare(
    texts: list[str],
    labels: list[int],
    sources: list[str],
    embed: Callable[[list[str]], F32] | None,
    ordinary: int = ORDINARY,
    benign: list[str] | None = None,
) -> Prepared:
    """``benign``: extra texts known not to be injections (long-form web text from the moderation set).
    ``embed`` (the sentence encoder) is needed only for the opt-in classifier's figures and weights."""
    n = len(texts)
    more = benign or []
    generated = generate(ordinary) if ordinary else []
    texts = [*texts, *more, *generated]
    labels = [*labels, *[0] * (len(more) + len(generated))]
    sources = [*sources, *["benign"] * len(more), *["ordinary"] * len(generated)]
    seen: list[str] = []
    rules: list[str | None] = []
    for t in texts:
        norm, views = all_views(t)
        rules.append(next((h for h in (rule_hit(v) for v in (norm, *views)) if h is not None), None))
        seen.append(" ".join([norm, *views[:-1]]))
    y = np.asarray(labels, dtype=np.int64)
    hard = np.asarray([s in HARD_SOURCES for s in sources]) & (y == 0)
    weight = np.where(hard, HARD_WEIGHT, 1.0).astype(np.float32)
    emb = embed(seen) if embed is not None else None
    return Prepared(seen, rules, Texts.of(seen), emb, y, weight, n, n + len(more))


def fit(p: Prepared, idx: I64) -> InjectionModel:
    cheap = p.texts.fit(idx, p.y[idx], p.weight[idx])
    if p.emb is not None:
        ew, eb = fit_logreg(p.emb[idx], p.y[idx], l2=L2, steps=500, weight=p.weight[idx])
    else:
        ew, eb = np.zeros(384, dtype=np.float32), 0.0
    return InjectionModel(cheap, ew, eb, THRESHOLD, *BAND)


def predict(m: InjectionModel, p: Prepared, i: int, classifier: bool = False) -> tuple[int, str]:
    """(prediction, deciding layer) for row i, exactly as ``InjectionDetector`` decides."""
    if p.rule[i] is not None:
        return 1, "rule"
    if len(p.seen[i].split()) < MIN_WORDS:
        return 0, "short"
    pc = m.cheap.prob(p.seen[i])
    if classifier and p.emb is not None and m.uncertain(pc):
        return int((pc + m.emb_prob(p.emb[i])) / 2 >= m.threshold), "classifier"
    return int(pc >= m.threshold), "model"


def cross_validate(
    p: Prepared, folds: int = 5, seed: int = 0, classifiers: tuple[bool, ...] = (False,)
) -> dict[bool, tuple[list[int], list[str]]]:
    """Out-of-fold predictions (dev and extra benign rows) per configuration: every row is predicted by a
    model that never saw it; the ordinary prompts are in every training fold."""
    fold = folds_of(p.y[: p.scored], folds, seed)
    always = np.arange(p.scored, len(p.y), dtype=np.int64)
    out = {c: ([0] * p.scored, [""] * p.scored) for c in classifiers}
    for k in range(folds):
        m = fit(p, np.concatenate([np.flatnonzero(fold != k), always]))
        for i in np.flatnonzero(fold == k):
            for c in classifiers:
                out[c][0][i], out[c][1][i] = predict(m, p, int(i), c)
    return out


# ---- moderation ---------------------------------------------------------------------------------------


Labels = dict[str, list[int | None]]  # category → per-row 1 / 0 / None (unknown)


def flagged(labels: Labels) -> I64:
    n = len(next(iter(labels.values())))
    return np.asarray([int(any(labels[c][i] == 1 for c in labels)) for i in range(n)], dtype=np.int64)


def _known(labels: Labels, cat: str, idx: I64) -> tuple[I64, I64]:
    rows = np.asarray([i for i in idx if labels[cat][i] is not None], dtype=np.int64)
    return rows, np.asarray([labels[cat][i] for i in rows], dtype=np.int64)


def fit_moderation(t: Texts, labels: Labels, idx: I64) -> ModerationModel:
    """The "flagged" model on every row; one model per shipped category on the rows labelled for it."""
    y = flagged(labels)
    cats: dict[str, LinearText] = {}
    for cat in CATEGORIES:
        rows, yc = _known(labels, cat, idx)
        if yc.sum() > 0:
            cats[cat] = t.fit(rows, yc)
    return ModerationModel(t.fit(idx, y[idx]), cats, MOD_THRESHOLD)


def cross_validate_moderation(
    t: Texts, labels: Labels, folds: int = 5, seed: int = 0
) -> tuple[list[int], dict[str, tuple[list[int], list[int]]]]:
    """Out-of-fold "flagged" predictions, and per category (every labelled one) out-of-fold (pred, gold)."""
    y = flagged(labels)
    fold = folds_of(y, folds, seed)
    pred = [0] * len(y)
    for k in range(folds):
        m = t.fit(np.flatnonzero(fold != k), y[fold != k])
        for i in np.flatnonzero(fold == k):
            pred[i] = int(m.prob(t.norms[i]) >= MOD_THRESHOLD)
    per: dict[str, tuple[list[int], list[int]]] = {}
    for cat in labels:
        rows, yc = _known(labels, cat, np.arange(len(y), dtype=np.int64))
        if yc.sum() < 2:
            continue
        cfold = folds_of(yc, min(folds, int(yc.sum())), seed)
        cp = [0] * len(rows)
        for k in range(int(cfold.max()) + 1):
            m = t.fit(rows[cfold != k], yc[cfold != k])
            for j in np.flatnonzero(cfold == k):
                cp[j] = int(m.prob(t.norms[rows[j]]) >= MOD_THRESHOLD)
        per[cat] = (cp, [int(v) for v in yc])
    return pred, per
