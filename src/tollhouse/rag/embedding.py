"""Embedding for retrieval. ``local-embed`` (the default) runs the embedded all-MiniLM-L6-v2 int8 ONNX
encoder (ADR 0016) in this process, in one worker thread; any other name is an embeddings deployment of the
registry (an OpenAI-compatible ``/v1/embeddings`` upstream), called in batches. Vectors are L2-normalised
here whatever the source, so dense scores are cosine similarities.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from tollhouse.errors import InvalidRequest
from tollhouse.stores.rag_base import F32
from tollhouse.types import EmbeddingRequest

LOCAL = "local-embed"


class Embedder(Protocol):
    name: str

    async def embed(self, texts: list[str]) -> F32:
        """Unit-length rows, one per text."""
        ...


class LocalEmbedder:
    """The embedded encoder in ``threads`` worker threads, each with its own ONNX session (one intra-op
    thread each): a query is one text on one thread; the chunks of an ingest (``ingest_many``: many
    documents per call) are spread over all of them."""

    name = LOCAL

    def __init__(self, model_dir: str | None = None, threads: int = 1, model_path: str | None = None) -> None:
        self._model_dir = model_dir
        self._model_path = model_path  # the ONNX graph; by default the shipped one
        self.threads = max(1, threads)
        self._local = threading.local()
        self._pool = concurrent.futures.ThreadPoolExecutor(self.threads, thread_name_prefix="rag-encoder")

    def encode(self, texts: list[str]) -> F32:
        """Blocking, in the calling thread (with that thread's own session)."""
        enc = getattr(self._local, "enc", None)
        if enc is None:
            from tollhouse.embeddings.onnx_encoder import OnnxSentenceEncoder

            enc = self._local.enc = OnnxSentenceEncoder(self._model_path, self._model_dir)
        out: F32 = enc.encode([" ".join(t.split()) for t in texts])
        return out

    async def embed(self, texts: list[str]) -> F32:
        loop = asyncio.get_running_loop()
        n = min(self.threads, len(texts))
        if n <= 1:
            rows: F32 = await loop.run_in_executor(self._pool, self.encode, texts)
            return rows
        parts = await asyncio.gather(
            *(loop.run_in_executor(self._pool, self.encode, texts[i::n]) for i in range(n))
        )
        out = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        for i, part in enumerate(parts):
            out[i::n] = part
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class DeploymentEmbedder:
    """An embeddings deployment of the registry; ``embed`` is its provider's ``embed``."""

    def __init__(self, name: str, call: Callable[[EmbeddingRequest], Any], batch: int = 64) -> None:
        self.name = name
        self._call = call
        self._batch = batch

    async def embed(self, texts: list[str]) -> F32:
        rows: list[list[float]] = []
        for i in range(0, len(texts), self._batch):
            resp = await self._call(EmbeddingRequest(model=self.name, input=texts[i : i + self._batch]))
            rows.extend(resp.data)
        return normalise(np.asarray(rows, dtype=np.float32).reshape(len(texts), -1))


def normalise(m: F32) -> F32:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    out: F32 = (m / np.where(norms == 0, 1.0, norms)).astype(np.float32)
    return out


class Embedders:
    """Embedders by model name: the local encoder, else a registry deployment that serves embeddings."""

    def __init__(self, local: LocalEmbedder, registry: Any = None, ledger: Any = None) -> None:
        self.local = local
        self._registry = registry
        self._ledger = ledger  # each deployment call becomes a ledger record (``metering.py``)
        self._made: dict[str, Embedder] = {}

    def get(self, name: str) -> Embedder:
        if name == LOCAL:
            return self.local
        if name in self._made:
            return self._made[name]
        if self._registry is None:
            raise InvalidRequest(f"Unknown embedding model '{name}'.", param="embedding_model")
        try:
            dep = self._registry.get(name)
        except Exception:
            raise InvalidRequest(f"Unknown embedding model '{name}'.", param="embedding_model") from None
        if not dep.provider.capabilities.embeddings:
            raise InvalidRequest(f"Model '{name}' does not serve embeddings.", param="embedding_model")
        call = dep.provider.embed
        if self._ledger is not None:
            from tollhouse.rag.metering import metered

            call = metered(name, call, self._ledger)
        made = DeploymentEmbedder(name, call)
        self._made[name] = made
        return made

    def close(self) -> None:
        self.local.close()
