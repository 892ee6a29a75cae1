"""The embedded llama.cpp model counts its prompts with its own tokenizer and chat template: admission's count
is exactly what the generation bills (SmolLM2, loaded once for the module: slow)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tollhouse.providers.llamacpp import LlamaCppProvider
from tollhouse.providers.registry import Deployment
from tollhouse.settings import LlamaCppModel
from tollhouse.tokens import BYTES, OwnTokenizer, choose
from tollhouse.types import ChatRequest, CompletionRequest, Message

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local() -> Iterator[Deployment]:
    cfg = LlamaCppModel(name="local", context_window=512, max_output_tokens=64, n_ctx=512)
    provider = LlamaCppProvider(cfg)
    yield Deployment(cfg, provider)
    asyncio.run(provider.aclose())


async def test_admission_counts_what_the_model_bills(local: Deployment) -> None:
    counter = choose(local)
    assert isinstance(counter, OwnTokenizer)
    chat = ChatRequest(
        "local", [Message("system", "Answer in one word."), Message("user", "a " * 40)], max_tokens=1
    )
    answer = await local.provider.complete(chat)
    assert counter.chat(chat) == answer.usage.prompt_tokens
    assert BYTES.chat(chat) >= answer.usage.prompt_tokens
    text = CompletionRequest("local", "東京は日本の首都です。 The capital of France is", max_tokens=1)
    done = await local.provider.complete_text(text)
    assert counter.completion(text) == done.usage.prompt_tokens
    assert BYTES.completion(text) >= done.usage.prompt_tokens
