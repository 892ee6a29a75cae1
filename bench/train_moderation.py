"""Fit the unsafe-content classifier; writes guardrails/data/moderation.npz (weights only, no texts).

    .venv/bin/python bench/train_moderation.py [--data ../shared/datasets/moderation/dev.jsonl]

Trains on every dev row plus the generated rows (``evals/moderation_data.py``); the "flagged" thresholds
come from a 5-fold CV over the dev rows first (ADR 0029). Cross-validated figures: ``tollhouse eval
moderation``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tollhouse.embeddings.onnx_encoder import OnnxSentenceEncoder
from tollhouse.evals import moderation_fit
from tollhouse.guardrails.features import F32
from tollhouse.guardrails.moderation import EMB_CHARS

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/datasets/moderation/dev.jsonl"))
    ap.add_argument("--out", default=str(ROOT / "src/tollhouse/guardrails/data/moderation.npz"))
    args = ap.parse_args()
    rows = [json.loads(line) for line in Path(args.data).read_text().split("\n") if line.strip()]
    enc = OnnxSentenceEncoder()

    def embed(texts: list[str]) -> F32:
        return enc.encode([t[:EMB_CHARS] for t in texts])

    prepared = moderation_fit.prepare(rows, embed)
    model = moderation_fit.fit_shipped(prepared)
    model.save(args.out)
    size = Path(args.out).stat().st_size
    print(f"wrote {args.out} ({size} bytes) from {len(rows)} dev rows + generated; thresholds "
          f"cheap {model.threshold:.2f} head {model.emb_threshold:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
