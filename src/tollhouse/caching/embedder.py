"""The semantic cache's ``Embedder``: the embedded all-MiniLM-L6-v2 encoder — by default its int8 ONNX export
(``int8``, ~2-3 ms per query; ADR 0016), or the exact numpy encoder (``exact``, ~6 ms; ADR 0001) — loaded on
first use and run in one dedicated worker thread, so the CPU work never lands on the event loop and at most
one text is encoded at a time per process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tollhouse.caching.semantic import query_text

F32 = npt.NDArray[np.float32]
EncoderKind = Literal["int8", "exact"]


class EncoderEmbedder:
    """Texts → unit-length 384-d float32 vectors. Texts are whitespace-folded before encoding."""

    dim = 384

    def __init__(self, model_dir: str | None = None, encoder: EncoderKind = "int8") -> None:
        self._model_dir = model_dir
        self.encoder = encoder
        self._lock = threading.Lock()
        self._enc: Any = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cache-encoder")

    def encode_many(self, texts: list[str]) -> F32:
        """Blocking batch encode (eval, bench, warm-up): rows in the order of ``texts``."""
        with self._lock:
            if self._enc is None:
                self._enc = load_encoder(self.encoder, self._model_dir)
        out: F32 = self._enc.encode([query_text(t) for t in texts])
        return out

    async def embed(self, text: str) -> F32:
        """One text's vector, computed in the worker thread. Raises FileNotFoundError without the model."""
        rows = await self.embed_many([text])
        row: F32 = rows[0]
        return row

    async def embed_many(self, texts: list[str]) -> F32:
        loop = asyncio.get_running_loop()
        rows: F32 = await loop.run_in_executor(self._pool, self.encode_many, texts)
        return rows

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        self.close()


def load_encoder(kind: EncoderKind, model_dir: str | None = None, *, batch_size: int = 16) -> Any:
    """The encoder ``kind`` names (an object with ``encode(texts) -> [n, 384] float32``)."""
    if kind == "int8":
        from tollhouse.embeddings.onnx_encoder import OnnxSentenceEncoder

        return OnnxSentenceEncoder(model_dir=model_dir)
    from tollhouse.embeddings.encoder import SentenceEncoder

    return SentenceEncoder(model_dir, batch_size=batch_size)
