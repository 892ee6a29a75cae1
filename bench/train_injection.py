"""Fit the injection classifier on the shared dev set and write src/tollhouse/guardrails/data/injection.npz.

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
from tollhouse.guardrails import training

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/datasets/injection/dev.jsonl"))
    ap.add_argument("--out", default=str(ROOT / "src/tollhouse/guardrails/data/injection.npz"))
    args = ap.parse_args()
    rows = [json.loads(line) for line in Path(args.data).read_text().split("\n") if line.strip()]
    enc = SentenceEncoder()
    prep = training.prepare([r["text"] for r in rows], [int(r["label"]) for r in rows], enc.encode)
    model = training.fit(prep, np.arange(len(rows)))
    training.save(model, args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes) from {len(rows)} rows")


if __name__ == "__main__":
    main()
