"""Fit the injection models on the shared dev set and write src/tollhouse/guardrails/data/injection.npz.

    .venv/bin/python bench/train_injection.py [--data ../shared/datasets/injection/dev.jsonl]

The artifact holds fitted weights and thresholds only (no texts). Cross-validated figures:
``tollhouse eval guardrails``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from tollhouse.embeddings.encoder import SentenceEncoder
from tollhouse.evals import training

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
    args = ap.parse_args()
    rows = [json.loads(line) for line in Path(args.data).read_text().split("\n") if line.strip()]
    benign = [
        json.loads(line)["prompt"] for line in Path(args.benign).read_text().split("\n") if line.strip()
    ]
    prep = training.prepare(
        [r["text"] for r in rows],
        [int(r["label"]) for r in rows],
        [str(r.get("source", "")) for r in rows],
        SentenceEncoder().encode,
        benign=benign,
    )
    model = training.fit(prep, np.arange(len(prep.y)))  # dev set, benign texts, generated ordinary prompts
    model.save(args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes) from {len(prep.y)} rows")


if __name__ == "__main__":
    main()
