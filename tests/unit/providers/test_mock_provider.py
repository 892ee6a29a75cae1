"""MockProvider knobs: reply, word tokens, max_tokens/stop, latency, failure injection, counters."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from tollhouse.errors import (
    UpstreamBadRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tollhouse.providers.mock import MockProvider
from tollhouse.settings import MockModel
from tollhouse.types import ChatChunk, ChatRequest, CompletionRequest, EmbeddingRequest, Message


def mock(**fields: Any) -> MockProvider:
    return MockProvider(MockModel(name="m", **fields))


def chat(text: str = "hello  big\nworld", **kw: Any) -> ChatRequest:
    return ChatRequest(model="public", messages=[Message("system", "be brief"), Message("user", text)], **kw)


def content(chunks: list[ChatChunk]) -> str:
    return "".join(ch.delta.content or "" for c in chunks for ch in c.choices)


async def test_echoes_the_last_user_message_and_counts_words() -> None:
    resp = await mock().complete(chat())
    assert resp.model == "public"
    assert resp.choices[0].message.content == "echo: hello  big\nworld"  # whitespace kept
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (5, 4)


async def test_fixed_reply() -> None:
    resp = await mock(reply="one two three").complete(chat())
    assert resp.choices[0].message.content == "one two three"


async def test_max_tokens_and_stop() -> None:
    provider = mock(reply="alpha beta gamma delta")
    cut = await provider.complete(chat(max_tokens=2))
    assert (cut.choices[0].message.content, cut.choices[0].finish_reason) == ("alpha beta", "length")
    assert cut.usage.completion_tokens == 2
    stopped = await provider.complete(chat(stop=["zzz", " gamma"]))
    assert (stopped.choices[0].message.content, stopped.choices[0].finish_reason) == ("alpha beta", "stop")


async def test_stream_is_one_word_per_chunk_then_finish_then_usage() -> None:
    provider = mock(reply="alpha beta gamma")
    chunks = [c async for c in provider.stream(chat(max_tokens=2))]
    assert [ch.delta.content for c in chunks[:2] for ch in c.choices] == ["alpha", " beta"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[2].choices[0].finish_reason == "length"
    assert chunks[3].choices == []
    assert chunks[3].usage is not None
    assert chunks[3].usage.completion_tokens == 2
    assert len({c.id for c in chunks}) == 1
    resp = await provider.complete(chat(max_tokens=2))
    assert content(chunks) == resp.choices[0].message.content
    assert provider.cancelled == 0


async def test_latency_and_chunk_delay() -> None:
    provider = mock(reply="a b c d", latency_ms=40, chunk_ms=20)
    started = time.perf_counter()
    await provider.complete(chat())
    assert time.perf_counter() - started >= 0.04
    started = time.perf_counter()
    _ = [c async for c in provider.stream(chat())]
    assert time.perf_counter() - started >= 0.04 + 3 * 0.02


FAILURES = [
    (429, UpstreamRateLimited, 429, 7.0),
    (500, UpstreamUnavailable, 502, None),
    (502, UpstreamUnavailable, 502, None),
    (503, UpstreamUnavailable, 503, 7.0),
    (504, UpstreamTimeout, 504, None),
    (400, UpstreamBadRequest, 400, None),
]


@pytest.mark.parametrize(("fail_status", "error", "status", "retry_after"), FAILURES)
async def test_failure_modes(
    fail_status: int, error: type[UpstreamError], status: int, retry_after: float | None
) -> None:
    provider = mock(fail_status=fail_status, retry_after_s=7)
    with pytest.raises(error) as info:
        await provider.complete(chat())
    assert type(info.value) is error
    assert (info.value.status, info.value.retry_after) == (status, retry_after)
    with pytest.raises(error):
        _ = [c async for c in provider.stream(chat())]
    with pytest.raises(error):
        await provider.embed(EmbeddingRequest(model="public", input=["x"]))
    assert (provider.calls, provider.failures) == (3, 3)


async def test_fail_every_nth_request() -> None:
    provider = mock(fail_status=503, fail_every=3)
    outcomes = []
    for _ in range(6):
        try:
            await provider.complete(chat())
            outcomes.append("ok")
        except UpstreamUnavailable:
            outcomes.append("fail")
    assert outcomes == ["ok", "ok", "fail", "ok", "ok", "fail"]
    assert (provider.calls, provider.failures) == (6, 2)


async def test_cancelled_counts_streams_closed_early() -> None:
    provider = mock(reply="a b c")
    stream = provider.stream(chat())
    assert isinstance(stream, AsyncGenerator)
    await anext(stream)
    await stream.aclose()
    assert (provider.calls, provider.cancelled) == (1, 1)
    _ = [c async for c in provider.stream(chat())]
    assert provider.cancelled == 1


async def test_text_completion_with_echo() -> None:
    provider = mock()
    req = CompletionRequest(model="public", prompt="once upon", max_tokens=2, echo=True)
    resp = await provider.complete_text(req)
    assert (resp.choices[0].text, resp.choices[0].finish_reason) == ("once uponecho: once", "length")
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (2, 2)
    chunks = [c async for c in provider.stream_text(req)]
    assert "".join(ch.text for c in chunks for ch in c.choices) == resp.choices[0].text
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None


async def test_embeddings_are_deterministic_unit_vectors() -> None:
    provider = mock(embedding_dim=12)
    resp = await provider.embed(EmbeddingRequest(model="public", input=["a b", "c", "a b"]))
    assert [len(v) for v in resp.data] == [12, 12, 12]
    assert all(math.isclose(sum(x * x for x in v), 1.0) for v in resp.data)
    assert resp.data[0] == resp.data[2] != resp.data[1]
    assert resp.usage.prompt_tokens == 5
    again = await mock(embedding_dim=12).embed(EmbeddingRequest(model="public", input=["a b"]))
    assert again.data[0] == resp.data[0]
    sized = await provider.embed(EmbeddingRequest(model="public", input=["a"], dimensions=3))
    assert len(sized.data[0]) == 3


async def test_health_and_close() -> None:
    provider = mock()
    assert (await provider.health()).ok
    await provider.aclose()
    await provider.aclose()
    assert provider.capabilities.chat
    assert provider.capabilities.completions
    assert provider.capabilities.embeddings
    assert provider.capabilities.streaming and not provider.capabilities.tools
