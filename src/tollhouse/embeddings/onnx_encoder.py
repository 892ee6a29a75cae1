"""The int8 sentence encoder: all-MiniLM-L6-v2 exported to ONNX with mean pooling and L2 normalisation in
the graph, its weights quantised to int8 (``bench/export_onnx_encoder.py``; ADR 0016), run by onnxruntime on
one thread. About 2.5x faster per query than the numpy encoder (ADR 0001) at the same cache quality; its
vectors differ slightly from the reference (mean cosine 0.994 to the numpy encoder's), so it serves the
semantic cache, while ``/v1/embeddings`` keeps the exact encoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Encoding, Tokenizer

from tollhouse.embeddings.encoder import HIDDEN, MAX_TOKENS, default_model_dir

Array = npt.NDArray[np.float32]
INT8_MODEL = Path(__file__).parent / "data" / "minilm-l6-int8.onnx"


class OnnxSentenceEncoder:
    """Texts → unit-length 384-d float32 vectors. ``run`` is thread-safe; one intra-op thread per call."""

    dim = HIDDEN

    def __init__(self, model_path: str | None = None, model_dir: str | None = None) -> None:
        import onnxruntime as ort

        path = Path(model_path) if model_path else INT8_MODEL
        root = Path(model_dir) if model_dir else default_model_dir()
        for file in (path, root / "tokenizer.json"):
            if not file.is_file():
                raise FileNotFoundError(f"encoder model file not found: {file}")
        self._tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one query at a time; two threads lose under contention
        options.inter_op_num_threads = 1
        self._session: Any = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str]) -> Array:
        """Embeddings of ``texts``: float32, shape ``[len(texts), 384]``, each row of unit length.

        Texts run one at a time: dynamic int8 quantisation scales each activation tensor by its own range,
        so in a padded batch a text's vector would depend on its neighbours (cosine ~0.995 to its own)."""
        out = np.empty((len(texts), HIDDEN), dtype=np.float32)
        for i, e in enumerate(self._tokenizer.encode_batch(texts) if texts else []):
            out[i] = self._forward(e)
        return out

    def _forward(self, e: Encoding) -> Array:
        ids = np.asarray([e.ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        row: Array = np.asarray(self._session.run(None, feed)[0][0], dtype=np.float32)
        return row
