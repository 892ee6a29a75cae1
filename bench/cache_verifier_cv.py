"""Out-of-fold figures of the semantic cache with the pair verifier (ADR 0028).

Reads the held-out scores ``bench/train_cache_verifier.py cv --fold k`` wrote (``DIR/fold-k.npy``: fold k
scored by the model trained on the other four folds + generated pairs), the int8 encoder's cosine and the
match checks of every dev pair, and for each fold picks the operating point on the *other* folds' scores —
the band floor ``lo`` (cosine) and the verifier threshold ``s`` with the most duplicate hits at training false
hits ≤ 0.9 % — then serves the fold with it. Rules (each with the match checks):

* ``cosine``: cosine ≥ t (the shipped rule without a verifier);
* ``verify all``: cosine ≥ lo and verifier ≥ s;
* ``verify band``: cosine ≥ t, or cosine ≥ lo and verifier ≥ s (the verifier runs only below t);
* ``blend``: cosine + w · verifier ≥ s, w picked on the training folds too (cosine ≥ lo).

The two verifier rules are also run without the match checks (``none``: no operating point keeps the
training false hits under the limit; the fold is then served by the cosine rule alone).

    PYTHONPATH=src python bench/cache_verifier_cv.py --scores /tmp/oof [--datasets DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tollhouse.evals.cache import CHECKS, FOLDS, SHIP_FALSE_HIT, CacheEval, embed_pairs, load_pairs

Mask = npt.NDArray[np.bool_]
F32 = npt.NDArray[np.float32]
WEIGHTS = [0.0, 0.005, 0.01, 0.02, 0.04, 0.08]
FLOORS = [round(0.50 + 0.05 * i, 2) for i in range(10)]  # 0.50 … 0.95


def folds_of(ev: CacheEval, seed: int = 0) -> npt.NDArray[np.int64]:
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(ev.pairs), dtype=np.int64)
    for s in ev.sources():
        for d in (False, True):
            idx = np.flatnonzero((ev.source == s) & (ev.duplicate == d))
            fold[rng.permutation(idx)] = np.arange(len(idx)) % FOLDS
    return fold


def best_threshold(score: F32, cand: Mask, dup: Mask, train: Mask) -> tuple[float, int]:
    """The lowest verifier threshold among ``cand`` keeping training false hits ≤ the limit, and the
    training duplicate hits there."""
    non = train & ~dup
    allowed = int(np.floor(SHIP_FALSE_HIT * non.sum()))
    neg = np.sort(score[cand & non])[::-1]
    s = float(np.nextafter(neg[allowed], np.float32(np.inf))) if len(neg) > allowed else -np.inf
    return s, int((cand & train & dup & (score >= s)).sum())


def pick(rule: str, ev: CacheEval, ver: F32, ok: Mask, train: Mask, t0: float) -> tuple[float, float]:
    best = (-1, 1.0, np.inf)
    dup = ev.duplicate
    for lo in FLOORS:
        cand = ok & (ev.similarity >= lo)
        if rule == "verify band":
            base = ok & (ev.similarity >= t0)
            # below t only: false hits of the base rule use part of the allowance
            non = train & ~dup
            used = int((base & non).sum())
            allowed = int(np.floor(SHIP_FALSE_HIT * non.sum())) - used
            if allowed < 0:
                continue
            band = cand & ~base
            neg = np.sort(ver[band & non])[::-1]
            s = float(np.nextafter(neg[allowed], np.float32(np.inf))) if len(neg) > allowed else -np.inf
            dh = int(((base | (band & (ver >= s))) & train & dup).sum())
        else:
            s, dh = best_threshold(ver, cand, dup, train)
        if dh > best[0]:
            best = (dh, lo, s)
    return best[1], best[2]


def serve(rule: str, ev: CacheEval, ver: F32, ok: Mask, lo: float, s: float, t0: float) -> Mask:
    hit = ok & (ev.similarity >= lo) & (ver >= s)
    if rule == "verify band":
        hit |= ok & (ev.similarity >= t0)
    return hit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scores", type=Path, required=True)
    ap.add_argument("--datasets", type=Path, default=Path(__file__).resolve().parents[2] / "shared/datasets")
    a = ap.parse_args()
    pairs = load_pairs(a.datasets / "paraphrase" / "dev.jsonl")
    ev = CacheEval(pairs, embed_pairs(pairs))
    fold = folds_of(ev)
    ver = np.zeros(len(pairs), dtype=np.float32)
    for k in range(FOLDS):
        ver[fold == k] = np.load(a.scores / f"fold-{k}.npy")
    ok = ~ev.rejected(CHECKS)
    out = sys.stdout
    base_hit, base_t = ev.cross_validated()
    out.write(f"cosine (thresholds {base_t}):\n  all       {ev.summary(base_hit)}\n")
    for s in ev.sources():
        out.write(f"  {s:<10}{ev.summary(base_hit, s)}\n")
    for checks in (True, False):
        mask = ok if checks else np.ones(len(pairs), dtype=bool)
        for rule in ("verify all", "verify band"):
            hit = np.zeros(len(pairs), dtype=bool)
            chosen = []
            for k in range(FOLDS):
                train = fold != k
                t0 = base_t[k] if base_t[k] is not None else 1.0
                lo, s = pick(rule, ev, ver, mask, train, t0)
                chosen.append("none" if s == np.inf else f"lo {lo:.2f} s {s:+.2f}")
                hit[fold == k] = serve(rule, ev, ver, mask, lo, s, t0)[fold == k]
            label = f"{rule}{'' if checks else ', no checks'}"
            out.write(f"{label} ({'; '.join(chosen)}):\n  all       {ev.summary(hit)}\n")
            for src in ev.sources():
                out.write(f"  {src:<10}{ev.summary(hit, src)}\n")
    hit = np.zeros(len(pairs), dtype=bool)
    chosen = []
    for k in range(FOLDS):
        train = fold != k
        best = (-1, 0.0, 0.0, 0.0)
        for w in WEIGHTS:
            blend = (ev.similarity + w * ver).astype(np.float32)
            lo, s = pick("verify all", ev, blend, ok, train, 1.0)
            dh = int((serve("verify all", ev, blend, ok, lo, s, 1.0) & train & ev.duplicate).sum())
            if dh > best[0]:
                best = (dh, w, lo, s)
        _, w, lo, s = best
        chosen.append(f"w {w} lo {lo:.2f} s {s:.3f}")
        blend = (ev.similarity + w * ver).astype(np.float32)
        hit[fold == k] = serve("verify all", ev, blend, ok, lo, s, 1.0)[fold == k]
    out.write(f"blend ({'; '.join(chosen)}):\n  all       {ev.summary(hit)}\n")
    for src in ev.sources():
        out.write(f"  {src:<10}{ev.summary(hit, src)}\n")
    # the ranking power of the verifier alone, as a reference
    order = np.argsort(-ver)
    non = ~ev.duplicate
    allowed = int(np.floor(0.01 * non.sum()))
    cut = ver[order][np.flatnonzero(np.cumsum(non[order]) > allowed)[0]]
    dh = float((ev.duplicate & (ver > cut)).sum() / ev.duplicate.sum())
    out.write(f"verifier alone, in hindsight (largest DH at FH <= 1 %): DH {dh:.2%}\n")


if __name__ == "__main__":
    main()
