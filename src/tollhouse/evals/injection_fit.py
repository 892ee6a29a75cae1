"""Fitting, cross-validating and calibrating the injection models (ADR 0030).

One pool of rows, each with a fold: the dev set (stratified folds), the moderation set's texts (benign
long-form text, the same), generated ordinary prompts (fold -1: in every training set, never scored) and
generated prompts and documents, each fold drawn only from that fold's template families
(``synthetic.FOLDS``). Scoring fold k with a model fitted on the other folds therefore measures the dev
rows *and* phrasings whose families were never fitted.

Thresholds, one per context, are chosen on training folds only: for outer fold k a full inner
cross-validation runs on the four other folds (for each j ≠ k a model fitted without folds k and j scores
fold j), and the thresholds chosen on those pooled inner out-of-fold scores (``pick_direct``,
``pick_document``) judge fold k (ADR 0034). The shipped thresholds are picked by the same rules on the
out-of-fold scores of all five outer folds — the same procedure one level up.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from tollhouse.evals import synthetic
from tollhouse.evals.ordinary import generate
from tollhouse.evals.sparse_fit import SparseTexts
from tollhouse.evals.training import BAND, fit_logreg, folds_of
from tollhouse.guardrails.features import F32, LinearText, piece_embeddings
from tollhouse.guardrails.injection import MIN_WORDS, InjectionModel, all_views, canonical, rule_hit, segments

I64 = npt.NDArray[np.int64]
FOLDS = synthetic.FOLDS
HARD_SOURCES = frozenset({"notinject", "xstest-safe"})  # benign look-alikes of the dev set (label 0 only)
HARD_WEIGHT = 3.0
GENERATED_WEIGHT = 0.5  # generated prompts outnumber the dev rows ~3:1; at 1.0 the dev-set F1 fell ~0.01
ORDINARY = 400  # generated benign task prompts, in every training set (evals/ordinary.py)
SYNTHETIC = 2400  # generated direct prompts over all folds, half attacks
DOCUMENTS = 1500  # generated documents over all folds, half with an injected line
LONGFORM_DOCS = 200  # moderation texts whose windows the document model trains on (the rest: scored only)
GRID = np.round(np.arange(0.30, 0.951, 0.025), 3)
DEV_F1_FLOOR = 0.90  # the direct threshold keeps the dev-set F1 at least here …
HARD_MAX_FPR = 0.03  # … and notinject / xstest false positives at most here; then favours the look-alikes:
LOOK_ALIKES = ("roleplay", "trigger", "pasted")  # the generated kinds whose false positives it minimises
DOC_MAX_FPR = 0.01  # generated ordinary documents, held out
LONGFORM_MAX_FPR = 0.03  # the moderation set's texts read as documents


@dataclass(slots=True)
class Pool:
    """Every row the models learn from or are scored on. Direct rows: ``seen`` (what the direct model
    reads), the rule that fires, label, weight, fold and group (dev source, ``benign``, ``ordinary`` or a
    generated kind). Document rows: windows and lines for the document model; ``docs``: whole documents
    scored window by window."""

    seen: list[str]
    rule: list[str | None]
    texts: SparseTexts
    y: I64
    weight: npt.NDArray[np.float32]
    fold: I64
    group: list[str]
    n_dev: int
    doc_texts: SparseTexts
    doc_y: I64
    doc_fold: I64
    doc_weight: npt.NDArray[np.float32]
    docs: list[str]
    docs_y: I64
    docs_fold: I64
    docs_group: list[str]  # generated kind, or ``longform``
    docs_rule: list[bool]
    emb: F32 | None = None
    longform: list[str] = field(default_factory=list)


_SENT = re.compile(r"(?<=[.!?])\s+|\s*\n+\s*")


def _window_label(window: str, line: str) -> int:
    """1 when the window holds a sentence (of three words or more) of the injected line."""
    if not line:
        return 0
    parts = [p for p in _SENT.split(line) if len(p.split()) >= 3] or [line]
    return int(any(p in window for p in parts))


def _views(text: str) -> tuple[str, str | None]:
    norm, views = all_views(text)
    hit = next((h for h in (rule_hit(v) for v in (norm, *views)) if h is not None), None)
    return " ".join([norm, *views[:-1]]), hit


def build(
    texts: list[str],
    labels: list[int],
    sources: list[str],
    longform: list[str],
    *,
    embed: Callable[[list[str]], F32] | None = None,
    ordinary: int = ORDINARY,
    synthetic_n: int = SYNTHETIC,
    documents_n: int = DOCUMENTS,
    seed: int = 0,
) -> Pool:
    """The pool: the dev rows, ``longform`` (benign texts known not to be injections), generated rows."""
    n_dev = len(texts)
    dev_fold = folds_of(np.asarray(labels, dtype=np.int64), FOLDS, seed)
    long_fold = np.arange(len(longform)) % FOLDS
    rows: list[tuple[str, int, int, str]] = [
        *((t, y, int(k), s) for t, y, k, s in zip(texts, labels, dev_fold, sources, strict=True)),
        *((t, 0, int(k), "benign") for t, k in zip(longform, long_fold, strict=True)),
        *((t, 0, -1, "ordinary") for t in (generate(ordinary, seed) if ordinary else [])),
    ]
    doc_rows: list[tuple[str, int, int]] = [
        (t, y, int(k)) for t, y, k in zip(texts, labels, dev_fold, strict=True)
    ]
    doc_rows += [(t, 0, -1) for t in (generate(ordinary // 2, seed + 1) if ordinary else [])]
    for t, k in zip(longform[:LONGFORM_DOCS], long_fold[:LONGFORM_DOCS], strict=True):
        doc_rows += [(w, 0, int(k)) for w in segments(t)]
    docs: list[tuple[str, int, int, str]] = [
        (t, 0, int(k), "longform")
        for t, k in zip(longform[LONGFORM_DOCS:], long_fold[LONGFORM_DOCS:], strict=True)
    ]
    for k in range(FOLDS if synthetic_n else 0):
        made, made_y, kinds = synthetic.direct(synthetic_n // FOLDS, seed + 100 + k, synthetic.only(k))
        rows += [(t, y, k, kind) for t, y, kind in zip(made, made_y, kinds, strict=True)]
        # attack lines pasted into content (not a password game's "what is the secret?")
        doc_rows += [
            (t, 1, k) for t, y, kind in zip(made, made_y, kinds, strict=True) if y and kind != "secret"
        ]
        dtexts, dlabels, lines = synthetic.documents(documents_n // FOLDS, seed + 200 + k, synthetic.only(k))
        for t, y, line in zip(dtexts, dlabels, lines, strict=True):
            docs.append((t, y, k, "embedded" if y else "content"))
            doc_rows += [(w, _window_label(w, line), k) for w in segments(t)]
            if line:
                doc_rows.append((line, 1, k))
        doc_rows += [
            (t, 0, k)
            for t in synthetic.benign_lines(documents_n // FOLDS // 2, seed + 300 + k, synthetic.only(k))
        ]
    counted = Counter(doc_rows)  # generated windows repeat: one row, weighted by its count
    doc_rows = list(counted)
    seen, rule = zip(*(_views(t) for t, _, _, _ in rows), strict=True)
    table = piece_embeddings()
    label = np.asarray([r[1] for r in rows], dtype=np.int64)
    groups = [r[3] for r in rows]
    weight = np.ones(len(rows), dtype=np.float32)
    weight[np.asarray([g in (*synthetic.ATTACK_KINDS, *synthetic.BENIGN_KINDS) for g in groups])] = (
        GENERATED_WEIGHT
    )
    weight[np.asarray([g in HARD_SOURCES for g in groups]) & (label == 0)] = HARD_WEIGHT
    return Pool(
        seen=list(seen),
        rule=list(rule),
        texts=SparseTexts.of(list(seen), table),
        y=label,
        weight=weight,
        fold=np.asarray([r[2] for r in rows], dtype=np.int64),
        group=groups,
        n_dev=n_dev,
        doc_texts=SparseTexts.of([canonical(t) for t, _, _ in doc_rows], table),
        doc_y=np.asarray([r[1] for r in doc_rows], dtype=np.int64),
        doc_fold=np.asarray([r[2] for r in doc_rows], dtype=np.int64),
        doc_weight=np.asarray([counted[r] for r in doc_rows], dtype=np.float32),
        docs=[d[0] for d in docs],
        docs_y=np.asarray([d[1] for d in docs], dtype=np.int64),
        docs_fold=np.asarray([d[2] for d in docs], dtype=np.int64),
        docs_group=[d[3] for d in docs],
        docs_rule=[_views(d[0])[1] is not None for d in docs],
        emb=embed(list(seen)) if embed is not None else None,
        longform=longform,
    )


@dataclass(slots=True)
class Fitted:
    direct: LinearText
    doc: LinearText
    emb_w: F32
    emb_b: float


def fit(p: Pool, without: frozenset[int] = frozenset()) -> Fitted:
    """Both models on every row whose fold is not in ``without``."""
    idx = np.flatnonzero(~np.isin(p.fold, list(without))).astype(np.int64)
    didx = np.flatnonzero(~np.isin(p.doc_fold, list(without))).astype(np.int64)
    direct = p.texts.fit(idx, p.y[idx], p.weight[idx])
    doc = p.doc_texts.fit(didx, p.doc_y[didx], p.doc_weight[didx])
    if p.emb is not None:
        ew, eb = fit_logreg(p.emb[idx], p.y[idx], l2=1e-4, steps=500, weight=p.weight[idx])
    else:
        ew, eb = np.zeros(384, dtype=np.float32), 0.0
    return Fitted(direct, doc, ew, eb)


@dataclass(slots=True)
class Scores:
    """Probabilities of the rows of some folds: direct rows (``rows``) and whole documents (``docs``)."""

    rows: I64
    p: F32
    docs: I64
    doc_p: F32
    emb_p: F32 | None = None  # the opt-in embedding classifier's, when the pool has embeddings


def score(p: Pool, m: Fitted, folds: frozenset[int]) -> Scores:
    rows = np.flatnonzero(np.isin(p.fold, list(folds))).astype(np.int64)
    docs = np.flatnonzero(np.isin(p.docs_fold, list(folds))).astype(np.int64)
    probs = np.asarray([m.direct.prob(p.seen[i]) for i in rows], dtype=np.float32)
    doc_p = np.asarray(
        [max((m.doc.prob(canonical(w)) for w in segments(p.docs[i])), default=0.0) for i in docs],
        dtype=np.float32,
    )
    emb_p = None
    if p.emb is not None:
        emb_p = (1 / (1 + np.exp(-(p.emb[rows] @ m.emb_w + m.emb_b)))).astype(np.float32)
    return Scores(rows, probs, docs, doc_p, emb_p)


def decide(p: Pool, i: int, prob: float, threshold: float) -> int:
    """The direct detector's decision for row i, as ``InjectionDetector.fast`` makes it."""
    if p.rule[i] is not None:
        return 1
    if len(p.seen[i].split()) < MIN_WORDS:
        return 0
    return int(prob >= threshold)


def _fpr(pred: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_]) -> float:
    return float(pred[mask].mean()) if mask.any() else 0.0


def pick_direct(p: Pool, s: Scores) -> float:
    """The direct threshold: among thresholds with ≤ 3 % false positives on the dev set's look-alikes
    (notinject / xstest) and a dev-row F1 ≥ 0.90, the one with the fewest false positives on the generated
    look-alikes (role-play, trigger-word and pasted-text prompts); when no threshold keeps the F1 there,
    the best dev-row F1."""
    y = p.y[s.rows]
    group = np.asarray([p.group[i] for i in s.rows])
    look = (y == 0) & np.isin(group, [*LOOK_ALIKES])
    hard = (y == 0) & np.isin(group, [*HARD_SOURCES])
    dev = s.rows < p.n_dev
    best: tuple[float, float, float] | None = None  # (meets the F1 floor, -look-alike FPR or F1, threshold)
    for th in GRID:
        pred = np.asarray([decide(p, int(i), float(q), float(th)) for i, q in zip(s.rows, s.p, strict=True)])
        if _fpr(pred, hard) > HARD_MAX_FPR:
            continue
        tp = int((pred[dev] & y[dev]).sum())
        f = 2 * tp / max(int(pred[dev].sum()) + int(y[dev].sum()), 1)
        key = (1.0, -_fpr(pred, look), float(th)) if f >= DEV_F1_FLOOR else (0.0, f, float(th))
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best is not None else float(GRID[-1])


def pick_document(p: Pool, s: Scores) -> float:
    """The document threshold: the lowest with ≤ 1 % false positives on held-out ordinary generated
    documents and ≤ 3 % on the long-form texts."""
    group = np.asarray([p.docs_group[i] for i in s.docs])
    rule = np.asarray([p.docs_rule[i] for i in s.docs])
    for th in GRID:
        pred = ((s.doc_p >= th) | rule).astype(np.int64)
        if (
            _fpr(pred, group == "content") <= DOC_MAX_FPR
            and _fpr(pred, group == "longform") <= LONGFORM_MAX_FPR
        ):
            return float(th)
    return float(GRID[-1])


@dataclass(slots=True)
class CrossValidated:
    """Out-of-fold decisions of every scored direct row and document, and each fold's thresholds."""

    pred: dict[int, int]  # direct row → decision
    prob: dict[int, float]
    classifier: dict[int, int]  # direct row → decision with the opt-in classifier (pools with embeddings)
    doc_pred: dict[int, int]  # document → decision
    thresholds: list[tuple[float, float]]  # per fold: (direct, document), chosen on its training folds
    shipped: tuple[float, float]  # picked on all out-of-fold scores: the shipped model's thresholds


def pooled(parts: list[Scores]) -> Scores:
    """Out-of-fold scores of several models (each scoring folds it was not fitted on) as one set."""
    return Scores(
        np.concatenate([s.rows for s in parts]),
        np.concatenate([s.p for s in parts]),
        np.concatenate([s.docs for s in parts]),
        np.concatenate([s.doc_p for s in parts]),
    )


def inner_scores(p: Pool, k: int) -> Scores:
    """A full cross-validation inside the training folds of outer fold k: for each other fold j, a model
    fitted without folds k and j scores fold j. Every training row of fold k is scored once, out of fold,
    so the thresholds are picked on four folds' rows rather than one's (ADR 0034)."""
    parts = [score(p, fit(p, frozenset({k, j})), frozenset({j})) for j in range(FOLDS) if j != k]
    return pooled(parts)


def cross_validate(p: Pool, *, nested: bool = True) -> CrossValidated:
    """Five outer folds; ``nested``: thresholds per fold from an inner cross-validation on its training
    folds (else the shipped ones for all, which is what training needs: only ``shipped`` is used)."""
    outer: list[Scores] = []
    chosen: list[tuple[float, float]] = []
    for k in range(FOLDS):
        if nested:
            inner = inner_scores(p, k)
            chosen.append((pick_direct(p, inner), pick_document(p, inner)))
        outer.append(score(p, fit(p, frozenset({k})), frozenset({k})))
    every = pooled(outer)
    shipped = (pick_direct(p, every), pick_document(p, every))
    chosen = chosen or [shipped] * FOLDS
    out = CrossValidated({}, {}, {}, {}, chosen, shipped)
    for s, (th, dth) in zip(outer, chosen, strict=True):
        for n, (i, q) in enumerate(zip(s.rows, s.p, strict=True)):
            out.pred[int(i)] = decide(p, int(i), float(q), th)
            out.prob[int(i)] = float(q)
            if s.emb_p is not None:
                both = (float(q) + float(s.emb_p[n])) / 2 if BAND[0] < q < BAND[1] else float(q)
                out.classifier[int(i)] = decide(p, int(i), both, th)
        for i, q in zip(s.docs, s.doc_p, strict=True):
            out.doc_pred[int(i)] = int(q >= dth or p.docs_rule[int(i)])
    return out


def model_of(m: Fitted, thresholds: tuple[float, float]) -> InjectionModel:
    return InjectionModel(m.direct, m.doc, thresholds[1], m.emb_w, m.emb_b, thresholds[0], *BAND)
