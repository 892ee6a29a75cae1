"""Would a token-alignment check on the top candidate let the semantic-cache threshold drop? (ADR 0024)

For every pair of ``paraphrase/dev.jsonl`` it takes the last hidden state of all-MiniLM-L6-v2 (the numpy
encoder, one text per call), keeps the content word pieces (no stop words, no punctuation), and computes
``align``: the lowest, over both sides, of each content piece's best cosine to the other side's pieces.
Then, under 5-fold cross-validation (split within source and label, five seeds), it compares

* ``cosine``: cosine ≥ t plus the match checks (the shipped rule), t picked on the training folds;
* ``cosine+align``: cosine ≥ t and align ≥ a plus the match checks, (t, a) picked on the training folds,

each at the largest duplicate-hit rate whose training-fold false-hit rate is ≤ the shipped limit.

    PYTHONPATH=src python bench/cache_alignment_study.py [--datasets DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tollhouse.embeddings.encoder import HIDDEN, SentenceEncoder, _layer_norm
from tollhouse.evals.cache import CHECKS, SHIP_FALSE_HIT, CacheEval, load_pairs

STOP = set(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "do",
        "does",
        "did",
        "what",
        "which",
        "who",
        "whom",
        "how",
        "why",
        "when",
        "where",
        "can",
        "could",
        "should",
        "would",
        "will",
        "i",
        "you",
        "he",
        "she",
        "it",
        "we",
        "they",
        "my",
        "your",
        "me",
        "to",
        "of",
        "in",
        "on",
        "for",
        "and",
        "or",
        "with",
        "at",
        "by",
        "from",
        "as",
        "that",
        "this",
        "these",
        "those",
        "there",
        "their",
        "its",
        "his",
        "her",
        "our",
        "about",
        "into",
        "if",
        "than",
        "then",
        "so",
        "any",
        "some",
    ]
)
Mask = npt.NDArray[np.bool_]


def states(enc: SentenceEncoder, text: str) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The unit sentence vector and the unit last-layer vectors of the content word pieces."""
    e = enc._tokenizer.encode(text)
    ids = np.asarray([e.ids])
    n = ids.shape[1]
    x = _layer_norm(enc._word[ids] + enc._pos[:n], enc._emb_g, enc._emb_b).reshape(n, HIDDEN)
    for layer in enc._layers:
        x = enc._block(layer, x, 1, n, None)
    pooled = x.mean(0)
    keep = [
        i
        for i, t in enumerate(e.tokens)
        if t not in ("[CLS]", "[SEP]") and (t.isalnum() or t.startswith("##")) and t not in STOP
    ]
    h = x[keep] if keep else x
    return pooled / np.linalg.norm(pooled), h / np.linalg.norm(h, axis=1, keepdims=True)


def folds(ev: CacheEval, seed: int, k: int = 5) -> npt.NDArray[np.int64]:
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(ev.pairs), dtype=np.int64)
    for s in ev.sources():
        for d in (False, True):
            idx = np.flatnonzero((ev.source == s) & (ev.duplicate == d))
            fold[rng.permutation(idx)] = np.arange(len(idx)) % k
    return fold


def cross_validate(ev: CacheEval, align: npt.NDArray[np.float32], seed: int, use_align: bool) -> Mask:
    ok = ~ev.rejected(CHECKS)
    dup = ev.duplicate
    fold = folds(ev, seed)
    ts = np.arange(0.70, 0.995, 0.005)
    aligns = np.arange(0.30, 0.98, 0.02) if use_align else np.array([-1.0])
    hit = np.zeros(len(ev.pairs), dtype=bool)
    for k in range(5):
        train = fold != k
        best: tuple[float, Mask] | None = None
        for t in ts:
            for a in aligns:
                h = (ev.similarity >= t) & (align >= a) & ok
                fh = (h & train & ~dup).sum() / (train & ~dup).sum()
                dh = float((h & train & dup).sum() / (train & dup).sum())
                if fh <= SHIP_FALSE_HIT and (best is None or dh > best[0]):
                    best = (dh, h)
        if best is not None:
            hit[fold == k] = best[1][fold == k]
    return hit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", type=Path, default=Path(__file__).parents[2] / "shared" / "datasets")
    args = ap.parse_args()
    pairs = load_pairs(args.datasets / "paraphrase" / "dev.jsonl")
    enc = SentenceEncoder()
    cache = {q: states(enc, q) for p in pairs for q in (p.q1, p.q2)}
    sim = np.empty(len(pairs), dtype=np.float32)
    align = np.empty(len(pairs), dtype=np.float32)
    for i, p in enumerate(pairs):
        (a, ha), (b, hb) = cache[p.q1], cache[p.q2]
        s = ha @ hb.T
        sim[i], align[i] = float(a @ b), min(float(s.max(1).min()), float(s.max(0).min()))
    ev = CacheEval(pairs, sim)
    for seed in range(5):
        for name, use in (("cosine", False), ("cosine+align", True)):
            sys.stdout.write(f"seed {seed} {name:13s} {ev.summary(cross_validate(ev, align, seed, use))}\n")


if __name__ == "__main__":
    main()
