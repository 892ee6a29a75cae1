"""Fit the injection models on the shared dev set and write src/tollhouse/guardrails/data/injection.npz.

    .venv/bin/python bench/train_injection.py [--data ../shared/datasets/injection/dev.jsonl]

The artifact holds fitted weights and thresholds only (no texts). Besides the dev set it fits on generated
prompts and documents (``evals/synthetic.py``, deterministic). The thresholds (one per context) are picked
on out-of-fold scores of five fitted-without-the-fold models (``evals/injection_fit.py``, ADR 0030), then
the shipped models are fitted on everything. Cross-validated figures: ``tollhouse eval injection``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from tollhouse.evals import injection_fit
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
    ap.add_argument("--thresholds", type=float, nargs=2, help="direct, document: skip the calibration")
    args = ap.parse_args()
    rows = [json.loads(line) for line in Path(args.data).read_text().split("\n") if line.strip()]
    longform = [
        json.loads(line)["prompt"] for line in Path(args.benign).read_text().split("\n") if line.strip()
    ]
    embed = None
    if args.refit_classifier:
        from tollhouse.embeddings.encoder import SentenceEncoder

        embed = SentenceEncoder().encode
    pool = injection_fit.build(
        [r["text"] for r in rows],
        [int(r["label"]) for r in rows],
        [str(r.get("source", "")) for r in rows],
        longform,
        embed=embed,
    )
    if args.thresholds:
        thresholds = (args.thresholds[0], args.thresholds[1])
    else:
        thresholds = injection_fit.cross_validate(pool, nested=False).shipped
    print(f"thresholds: direct {thresholds[0]:.3f}, document {thresholds[1]:.3f}")
    model = injection_fit.model_of(injection_fit.fit(pool), thresholds)
    if not args.refit_classifier:
        old = InjectionModel.load(args.out)
        model = dataclasses.replace(model, emb_w=old.emb_w, emb_b=old.emb_b)
    model.save(args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes) from {len(pool.y)} prompt rows")


if __name__ == "__main__":
    main()
