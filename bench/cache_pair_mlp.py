"""A pair classifier over the shipped int8 encoder's vectors (ADR 0028; measured, not shipped): features
``|u - v|``, ``u * v`` and the cosine of the two questions' vectors, a 128-unit MLP, trained per fold on the
same rows as ``bench/train_cache_verifier.py cv`` (generated + the other four dev folds), seeded. Writes the
held-out logits to ``OUT/fold-k.npy`` for ``bench/cache_verifier_cv.py``. Build time only; needs torch::

    /tmp/venv/bin/python bench/cache_pair_mlp.py --out /tmp/oof-mlp
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from train_cache_verifier import ROOT, folds_of, load, model_dir, pool

ENCODER = ROOT / "src/tollhouse/embeddings/data/minilm-l6-int8.onnx"


def embedder() -> Any:
    import onnxruntime as ort  # type: ignore[import-not-found]
    from tokenizers import Tokenizer  # type: ignore[import-not-found]

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.enable_truncation(max_length=256)
    tok.no_padding()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(ENCODER), options, providers=["CPUExecutionProvider"])
    seen: dict[str, Any] = {}

    def embed(text: str) -> Any:
        text = " ".join(text.split())
        if text not in seen:
            ids = np.asarray([tok.encode(text).ids], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            feed["token_type_ids"] = np.zeros_like(ids)
            seen[text] = session.run(None, feed)[0][0]
        return seen[text]

    return embed


def main() -> None:
    import torch  # type: ignore[import-not-found]

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/datasets/paraphrase/dev.jsonl")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    dev = load(a.data)
    fold = folds_of(dev)
    rows = [
        (r["q1"], r["q2"], int(r["duplicate"]), frozenset({int(f)})) for r, f in zip(dev, fold, strict=True)
    ]
    rows += pool(dev, fold, a.seed)
    embed = embedder()
    u = np.stack([embed(r[0]) for r in rows])
    v = np.stack([embed(r[1]) for r in rows])
    features = np.concatenate([np.abs(u - v), u * v, (u * v).sum(1, keepdims=True)], 1)
    x = torch.tensor(features, dtype=torch.float32)
    y = torch.tensor([float(r[2]) for r in rows])
    a.out.mkdir(parents=True, exist_ok=True)
    for k in range(5):
        keep = torch.tensor([i for i, r in enumerate(rows) if k not in r[3]])
        torch.manual_seed(a.seed)
        net = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], 128), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(128, 1)
        )
        opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=0.05)
        for _ in range(60):
            perm = keep[torch.randperm(len(keep))]
            for start in range(0, len(perm), 128):
                b = perm[start : start + 128]
                loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x[b]).squeeze(-1), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
        net.eval()
        held = torch.tensor(np.flatnonzero(fold == k))
        with torch.no_grad():
            np.save(a.out / f"fold-{k}.npy", net(x[held]).squeeze(-1).numpy())
        print(f"fold {k}: trained on {len(keep)} pairs", flush=True)


if __name__ == "__main__":
    main()
