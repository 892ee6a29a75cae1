"""Fit the unsafe-content classifier on the shared moderation set; writes guardrails/data/moderation.npz.

    .venv/bin/python bench/train_moderation.py [--data ../shared/datasets/moderation/dev.jsonl]

Weights only (no texts). Cross-validated figures per category: ``tollhouse eval moderation``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from tollhouse.evals import training
from tollhouse.guardrails.moderation import NAMES
from tollhouse.guardrails.normalize import normalise

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/datasets/moderation/dev.jsonl"))
    ap.add_argument("--out", default=str(ROOT / "src/tollhouse/guardrails/data/moderation.npz"))
    args = ap.parse_args()
    rows = [json.loads(line) for line in Path(args.data).read_text().split("\n") if line.strip()]
    texts = training.Texts.of([normalise(r["prompt"]) for r in rows])
    labels: training.Labels = {c: [r.get(c) for r in rows] for c in NAMES}
    model = training.fit_moderation(texts, labels, np.arange(len(rows), dtype=np.int64))
    model.save(args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes) from {len(rows)} rows")


if __name__ == "__main__":
    main()
