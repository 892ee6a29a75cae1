"""Embedded embeddings provider: serves ``/v1/embeddings`` from the in-process numpy sentence encoder.

Only ``embed`` is supported. Encoding is CPU work, so it runs in one dedicated worker thread: never on
the event loop, and one batch at a time so concurrent requests do not fight over the two BLAS threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncGenerator

import numpy as np

from tollhouse.embeddings.encoder import SentenceEncoder
from tollhouse.errors import InvalidRequest, UpstreamUnavailable
from tollhouse.providers.base import Health
from tollhouse.settings import ConfigError, EncoderModel
from tollhouse.types import (
    Capabilities,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Usage,
)


class EncoderProvider:
    """One encoder deployment; ``encoder`` lets a caller share an already loaded encoder (e.g. a cache)."""

    def __init__(self, cfg: EncoderModel, *, encoder: SentenceEncoder | None = None) -> None:
        self.name = cfg.name
        self.capabilities = Capabilities(chat=False, completions=False, embeddings=True, streaming=False)
        self._cfg = cfg
        try:
            self._encoder = encoder or SentenceEncoder(cfg.model_dir)
        except FileNotFoundError as exc:
            raise ConfigError(f"model {cfg.name!r}: {exc}") from None
        # A single worker thread bounds encoding concurrency to one without an asyncio primitive, which
        # would tie the provider to the event loop that first used it.
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"encoder-{cfg.name}")
        self._closed = False

    async def embed(self, req: EmbeddingRequest) -> EmbeddingResponse:
        texts = self._validate(req)
        dims = self._dimensions(req)
        loop = asyncio.get_running_loop()
        try:
            vectors, tokens = await loop.run_in_executor(self._executor, self._encode, texts, dims)
        except RuntimeError:  # executor shut down by aclose
            if not self._closed:
                raise
            raise UpstreamUnavailable(f"model {self.name!r} is shut down", status=503) from None
        return EmbeddingResponse(model=req.model, data=vectors, usage=Usage(prompt_tokens=tokens))

    def _validate(self, req: EmbeddingRequest) -> list[str]:
        items = list(req.input)
        if not items:
            raise InvalidRequest("input must not be empty", param="input")
        texts: list[str] = []
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise InvalidRequest(
                    f"model {req.model!r} takes text input only; input[{i}] is token ids", param="input"
                )
            if not item:
                raise InvalidRequest(f"input[{i}] is an empty string", param="input")
            texts.append(item)
        if len(texts) > self._cfg.max_batch:
            raise InvalidRequest(
                f"at most {self._cfg.max_batch} inputs per request for model {req.model!r}, got {len(texts)}",
                param="input",
            )
        return texts

    def _dimensions(self, req: EmbeddingRequest) -> int:
        dim = self._encoder.dim
        if req.dimensions is None:
            return dim
        if not 1 <= req.dimensions <= dim:
            raise InvalidRequest(
                f"dimensions must be between 1 and {dim} for model {req.model!r}, got {req.dimensions}",
                param="dimensions",
            )
        return req.dimensions

    def _encode(self, texts: list[str], dims: int) -> tuple[list[list[float]], int]:
        vectors, tokens = self._encoder.encode_counted(texts)
        if dims < vectors.shape[1]:
            # Shortened vectors are cut and re-normalised, as OpenAI's `dimensions` does, so cosine
            # similarity stays a plain dot product.
            vectors = vectors[:, :dims]
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors.tolist(), tokens

    async def complete(self, req: ChatRequest) -> ChatResponse:
        raise self._unsupported(req.model, "chat completions")

    async def stream(self, req: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        raise self._unsupported(req.model, "chat completions")
        yield  # unreachable: makes this an async generator, failing on first iteration like the others

    async def complete_text(self, req: CompletionRequest) -> CompletionResponse:
        raise self._unsupported(req.model, "text completions")

    async def stream_text(self, req: CompletionRequest) -> AsyncGenerator[CompletionChunk, None]:
        raise self._unsupported(req.model, "text completions")
        yield  # unreachable, as in stream

    @staticmethod
    def _unsupported(model: str, what: str) -> InvalidRequest:
        return InvalidRequest(f"model {model!r} does not support {what}; it serves embeddings", param="model")

    async def health(self) -> Health:
        return Health(ok=not self._closed, detail="closed" if self._closed else "loaded")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Batches already queued are short: let them finish rather than fail them.
        await asyncio.to_thread(self._executor.shutdown, wait=True)
