"""Fit the injection models on the shared dev set and write src/tollhouse/guardrails/data/injection.npz.

    .venv/bin/python bench/train_injection.py [--data ../shared/datasets/injection/dev.jsonl]

The artifact holds fitted weights and thresholds only (no texts). Besides the dev set it fits on generated
prompts and documents (``evals/synthetic.py``, deterministic). Cross-validated figures:
``tollhouse eval injection``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from tollhouse.embeddings.encoder import SentenceEncoder
from tollhouse.evals import training
from tollhouse.guardrails.injection import InjectionModel

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/datasets/injection/dev.jsonl"))
    ap.add_argument(
        "--benign",
        default=str(ROOT.parent / "shared/datasets/moderation/dev.jsonl"),
        help="long-form texts that are not injections (the moderation set's prompts)",
    )
    ap.add_argument("--out", default=str(ROOT / "src/tollhouse/guardrails/data/injection.npz"))
    ap.add_argument(
        "--refit-classifier",
        action="store_true",
        help="also refit the opt-in embedding classifier (encodes every row: minutes); otherwise its "
        "weights are kept from the current --out file",
    )
    ap.add_argument("--doc-threshold", type=float, help="skip the calibration and use this threshold")
    args = ap.parse_args()
    rows = [json.loads(line) for line in Path(args.data).read_text().split("\n") if line.strip()]
    benign = [
        json.loads(line)["prompt"] for line in Path(args.benign).read_text().split("\n") if line.strip()
    ]
    texts = [r["text"] for r in rows]
    labels = [int(r["label"]) for r in rows]
    sources = [str(r.get("source", "")) for r in rows]
    # 1. The document threshold, calibrated on templates the model did not see (ADR 0017).
    doc_threshold = args.doc_threshold
    if doc_threshold is None:
        half = training.prepare(texts, labels, sources, None, benign=benign, half=0)
        doc_threshold = training.calibrate_documents(training.fit(half, np.arange(len(half.y))), benign[200:])
    print(f"document threshold {doc_threshold}")
    # 2. The shipped models on everything: dev set, benign texts, generated prompts and documents.
    embed = SentenceEncoder().encode if args.refit_classifier else None
    prep = training.prepare(texts, labels, sources, embed, benign=benign)
    model = training.fit(prep, np.arange(len(prep.y)), doc_threshold)
    if not args.refit_classifier:
        old = InjectionModel.load(args.out)
        model = dataclasses.replace(model, emb_w=old.emb_w, emb_b=old.emb_b)
    model.save(args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes) from {len(prep.y)} rows")


if __name__ == "__main__":
    main()
