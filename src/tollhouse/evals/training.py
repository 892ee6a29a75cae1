"""Fitting and cross-validating the injection models (numpy only; moderation: ``moderation_fit``).

Used by ``bench/train_injection.py`` and ``tollhouse eval guardrails``; the
runtime only loads the fitted weights. Hyperparameters were chosen by 5-fold CV on three fold splits
(ADR 0010); every figure the eval reports is out-of-fold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tollhouse.evals import synthetic
from tollhouse.evals.ordinary import generate
from tollhouse.guardrails.features import F32, LinearText, lexical_matrix, piece_embeddings, piece_matrix
from tollhouse.guardrails.injection import MIN_WORDS, InjectionModel, all_views, rule_hit, segments
from tollhouse.guardrails.normalize import normalise

I64 = npt.NDArray[np.int64]
L2 = 1e-4
HARD_SOURCES = frozenset({"notinject", "xstest-safe"})  # benign look-alikes (label 0 only)
HARD_WEIGHT = 3.0  # their weight in the loss, on top of class balancing
THRESHOLD = 0.5
ORDINARY = 400  # generated benign task prompts added to every training fold (guardrails/ordinary.py)
SYNTHETIC = 1600  # generated direct prompts (evals/synthetic.py), half attacks, in every training fold
DOCUMENTS = 1200  # generated emails, half with an injected line: the document model's windows
DOC_THRESHOLD = 0.5  # replaced by the calibrated value (``calibrate_documents``) when training ships
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
    doc: Texts  # the document model's rows: the first ``n`` are the dev set's, then generated windows
    doc_y: I64


def document_rows(
    half: synthetic.Half, seed: int, extra_benign: list[str], n: int = DOCUMENTS
) -> tuple[list[str], list[int]]:
    """The document model's generated rows: windows of generated emails (1 when a window holds the injected
    line), injected lines alone, ordinary email lines, ordinary prompts, windows of ``extra_benign``."""
    texts, _, lines = synthetic.documents(n, seed, half)
    out: list[str] = []
    ys: list[int] = []
    for text, line in zip(texts, lines, strict=True):
        for w in segments(text):
            out.append(w)
            ys.append(int(bool(line) and line in w))
        if line:
            out.append(line)
            ys.append(1)
    attacks, alabels, _ = synthetic.direct(n * SYNTHETIC // DOCUMENTS // 2, seed + 7, half)
    out += [a for a, y in zip(attacks, alabels, strict=True) if y]  # attack lines pasted into content
    ys += [1] * sum(alabels)
    more = (
        synthetic.benign_lines(n // 3, seed, half)
        + generate(n // 3, seed)
        + [w for t in extra_benign for w in segments(t)]
    )
    return out + more, ys + [0] * len(more)


def prepare(
    texts: list[str],
    labels: list[int],
    sources: list[str],
    embed: Callable[[list[str]], F32] | None,
    ordinary: int = ORDINARY,
    benign: list[str] | None = None,
    *,
    synthetic_n: int = SYNTHETIC,
    half: synthetic.Half = None,
    seed: int = 0,
) -> Prepared:
    """``benign``: extra texts known not to be injections (long-form web text from the moderation set).
    ``embed`` (the sentence encoder) is needed only for the opt-in classifier's figures and weights.
    ``half``: generate from that half of the templates only (the eval scores the other half)."""
    n = len(texts)
    dev_texts, dev_labels = list(texts), list(labels)
    more = benign or []
    generated = generate(ordinary) if ordinary else []
    made, made_y, _ = synthetic.direct(synthetic_n, seed, half) if synthetic_n else ([], [], [])
    texts = [*texts, *more, *generated, *made]
    labels = [*labels, *[0] * (len(more) + len(generated)), *made_y]
    sources = [*sources, *["benign"] * len(more), *["ordinary"] * len(generated), *["synthetic"] * len(made)]
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
    docs = DOCUMENTS * synthetic_n // SYNTHETIC
    doc_texts, doc_labels = document_rows(half, seed, more[:200], docs) if synthetic_n else ([], [])
    doc = Texts.of([normalise(t) for t in [*dev_texts, *doc_texts]])
    doc_y = np.asarray([*dev_labels, *doc_labels], dtype=np.int64)
    return Prepared(seen, rules, Texts.of(seen), emb, y, weight, n, n + len(more), doc, doc_y)


def fit(
    p: Prepared, idx: I64, doc_threshold: float = DOC_THRESHOLD, *, documents: bool = True
) -> InjectionModel:
    """Both models on the rows ``idx`` (dev rows among them count for the document model too, with every
    generated document row). ``documents=False``: a null document model (the direct-prompt CV)."""
    cheap = p.texts.fit(idx, p.y[idx], p.weight[idx])
    if documents:
        doc_idx = np.concatenate([idx[idx < p.n], np.arange(p.n, len(p.doc_y), dtype=np.int64)])
        doc = p.doc.fit(doc_idx, p.doc_y[doc_idx])
    else:
        doc = LinearText(np.zeros_like(cheap.lex_w), np.zeros_like(cheap.piece_w), -30.0)
    if p.emb is not None:
        ew, eb = fit_logreg(p.emb[idx], p.y[idx], l2=L2, steps=500, weight=p.weight[idx])
    else:
        ew, eb = np.zeros(384, dtype=np.float32), 0.0
    return InjectionModel(cheap, doc, doc_threshold, ew, eb, THRESHOLD, *BAND)


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
        m = fit(p, np.concatenate([np.flatnonzero(fold != k), always]), documents=False)
        for i in np.flatnonzero(fold == k):
            for c in classifiers:
                out[c][0][i], out[c][1][i] = predict(m, p, int(i), c)
    return out


DOC_MAX_FPR = 0.01  # on generated business emails from held-out templates


def calibrate_documents(m: InjectionModel, benign_docs: list[str], seed: int = 11) -> float:
    """The document threshold: the lowest on a 0.05 grid whose false-positive rate on emails generated from
    the other half of the templates (``m`` fitted on ``half=0``) and on ``benign_docs`` stays ≤ 1 %."""
    docs, labels, _ = synthetic.documents(DOCUMENTS, seed, half=1)
    neg = np.asarray([m.doc_prob(t) for t, y in zip(docs, labels, strict=True) if not y])
    other = np.asarray([m.doc_prob(t) for t in benign_docs]) if benign_docs else np.zeros(1)
    for th in np.arange(0.5, 0.96, 0.05):
        if (neg >= th).mean() <= DOC_MAX_FPR and (other >= th).mean() <= DOC_MAX_FPR * 3:
            return round(float(th), 2)
    return 0.95
