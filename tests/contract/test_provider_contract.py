"""Contract suite for the Provider protocol, run against every implementation cheap enough to build.

To add an implementation: write a factory fixture returning a ``make`` function that yields a ``Subject``,
then add its name to ``FACTORIES`` (with ``pytest.mark.slow`` when it loads a model or starts a server).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from tests.support.anthropic_upstream import start_anthropic_upstream
from tests.support.mock_upstream import admin, free_port, start_mock_upstream, stop

from tollhouse.errors import TollhouseError, UpstreamError
from tollhouse.providers.anthropic import AnthropicProvider
from tollhouse.providers.base import Provider
from tollhouse.providers.mock import MockProvider
from tollhouse.providers.openai_compat import OpenAICompatProvider
from tollhouse.settings import AnthropicModel, LlamaCppModel, MockModel, OpenAIModel
from tollhouse.types import (
    Capabilities,
    ChatChunk,
    ChatRequest,
    CompletionRequest,
    EmbeddingRequest,
    Message,
    TextPart,
)

PUBLIC = "contract-model"


@dataclass
class Subject:
    provider: Provider
    deterministic: bool  # same request → same text, stream or not
    cancelled: Callable[[], Awaitable[int]] | None = None  # upstream-side count of streams closed early
    broken: Provider | None = None  # the same kind of provider with a failing upstream


Make = Callable[[], AbstractAsyncContextManager[Subject]]

FACTORIES = [
    "mock_subject",
    "openai_compat_subject",
    "anthropic_subject",
    pytest.param("llamacpp_subject", marks=pytest.mark.slow),
]


@pytest.fixture(scope="session")
def upstream_url() -> Iterator[str]:
    proc, base = start_mock_upstream()
    try:
        yield base
    finally:
        stop(proc)


@pytest.fixture
def mock_subject() -> Make:
    @asynccontextmanager
    async def make() -> AsyncIterator[Subject]:
        provider = MockProvider(MockModel(name=PUBLIC))

        async def cancelled() -> int:
            return provider.cancelled

        yield Subject(provider, True, cancelled, MockProvider(MockModel(name=PUBLIC, fail_status=503)))
        await provider.aclose()

    return make


@pytest.fixture
def openai_compat_subject(upstream_url: str) -> Make:
    @asynccontextmanager
    async def make() -> AsyncIterator[Subject]:
        cfg = OpenAIModel(name=PUBLIC, model="upstream-id", api_base=upstream_url, embeddings=True)
        provider = OpenAICompatProvider(cfg)
        dead = f"http://127.0.0.1:{free_port()}/v1"
        broken = OpenAICompatProvider(OpenAIModel(name=PUBLIC, api_base=dead))

        async def cancelled() -> int:
            stats = await asyncio.to_thread(admin, upstream_url, "/__stats")
            return int(stats.get("stream_disconnects", 0))

        try:
            yield Subject(provider, True, cancelled, broken)
        finally:
            await provider.aclose()
            await broken.aclose()

    return make


@pytest.fixture(scope="session")
def anthropic_url() -> Iterator[str]:
    proc, base = start_anthropic_upstream()
    try:
        yield base
    finally:
        stop(proc)


@pytest.fixture
def anthropic_subject(anthropic_url: str, monkeypatch: pytest.MonkeyPatch) -> Make:
    monkeypatch.setenv("TH_CONTRACT_ANTHROPIC_KEY", "sk-ant-test")

    @asynccontextmanager
    async def make() -> AsyncIterator[Subject]:
        cfg = AnthropicModel(
            name=PUBLIC, model="claude-x", api_base=anthropic_url, api_key_env="TH_CONTRACT_ANTHROPIC_KEY"
        )
        provider = AnthropicProvider(cfg)
        dead = f"http://127.0.0.1:{free_port()}/v1"
        broken = AnthropicProvider(AnthropicModel(name=PUBLIC, api_base=dead, api_key_env=None))
        try:
            yield Subject(provider, True, None, broken)
        finally:
            await provider.aclose()
            await broken.aclose()

    return make


@pytest.fixture
def llamacpp_subject() -> Make:
    try:
        from tollhouse.providers.llamacpp import LlamaCppProvider
    except ModuleNotFoundError as exc:
        if exc.name != "tollhouse.providers.llamacpp":
            raise
        pytest.skip("tollhouse.providers.llamacpp is not available")

    @asynccontextmanager
    async def make() -> AsyncIterator[Subject]:
        # Sampling makes real models non-deterministic across calls, so text equality is not asserted.
        provider = LlamaCppProvider(LlamaCppModel(name=PUBLIC))
        try:
            yield Subject(provider, False)
        finally:
            await provider.aclose()

    return make


@pytest.fixture(params=FACTORIES)
def make_subject(request: pytest.FixtureRequest) -> Make:
    factory: Make = request.getfixturevalue(request.param)
    return factory


@pytest.fixture
async def subject(make_subject: Make) -> AsyncIterator[Subject]:
    async with make_subject() as s:
        yield s


def chat(text: str = "Say hello in three words.", **kw: Any) -> ChatRequest:
    kw.setdefault("max_tokens", 16)
    kw.setdefault("temperature", 0.0)
    return ChatRequest(model=PUBLIC, messages=[Message("user", text)], **kw)


async def collect(chunks: AsyncIterator[ChatChunk]) -> list[ChatChunk]:
    return [c async for c in chunks]


def text_of(chunks: list[ChatChunk]) -> str:
    return "".join(ch.delta.content or "" for c in chunks for ch in c.choices)


# ---- shape ------------------------------------------------------------------------------------------


async def test_satisfies_the_protocol(subject: Subject) -> None:
    p = subject.provider
    assert isinstance(p, Provider)
    assert isinstance(p.name, str)
    assert p.name
    assert isinstance(p.capabilities, Capabilities)
    assert p.capabilities.chat
    assert (await p.health()).ok


async def test_complete(subject: Subject) -> None:
    resp = await subject.provider.complete(chat())
    assert resp.model == PUBLIC
    assert resp.choices
    assert resp.choices[0].finish_reason in {"stop", "length"}
    assert isinstance(resp.choices[0].message.content, str)
    assert resp.usage.prompt_tokens > 0
    assert 0 <= resp.usage.completion_tokens <= 16


async def test_max_tokens_bounds_the_reply(subject: Subject) -> None:
    resp = await subject.provider.complete(chat(max_tokens=2))
    assert resp.usage.completion_tokens <= 2
    if subject.deterministic:
        assert resp.choices[0].finish_reason == "length"


async def test_stream(subject: Subject) -> None:
    chunks = await collect(subject.provider.stream(chat()))
    assert len(chunks) >= 2
    assert all(c.model == PUBLIC for c in chunks)
    finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert len(finishes) == 1
    assert finishes[0] in {"stop", "length"}
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.prompt_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    if subject.deterministic:
        resp = await subject.provider.complete(chat())
        assert text_of(chunks) == resp.choices[0].message.content
        assert last.usage.completion_tokens == resp.usage.completion_tokens


async def test_closing_a_stream_early_is_quiet_and_cancels(subject: Subject) -> None:
    before = await subject.cancelled() if subject.cancelled else 0
    # "slow_stream:200" keeps the mock upstream mid-stream when we leave; other providers just echo it.
    stream = subject.provider.stream(chat("slow_stream:200"))
    assert isinstance(stream, AsyncGenerator)  # the protocol promises async generators
    first = await anext(stream)
    assert first.model == PUBLIC
    await stream.aclose()
    never_started = subject.provider.stream(chat())
    assert isinstance(never_started, AsyncGenerator)
    await never_started.aclose()
    if subject.cancelled is None:
        return
    for _ in range(100):
        if await subject.cancelled() > before:
            break
        await asyncio.sleep(0.02)
    assert await subject.cancelled() > before


async def test_raises_only_tollhouse_errors(subject: Subject) -> None:
    odd = [
        ChatRequest(model=PUBLIC, messages=[Message("system", "You are terse.")], max_tokens=4),
        ChatRequest(
            model=PUBLIC,
            messages=[Message("user", [TextPart("hi"), TextPart("there")])],
            max_tokens=4,
        ),
        chat(stop=["echo", "Hello", "hello"], max_tokens=4),
        chat(max_tokens=1),
    ]
    for req in odd:
        try:
            await subject.provider.complete(req)
            await collect(subject.provider.stream(req))
        except TollhouseError:
            pass
    if subject.broken is not None:
        with pytest.raises(UpstreamError):
            await subject.broken.complete(chat())
        with pytest.raises(UpstreamError):
            await collect(subject.broken.stream(chat()))


async def test_text_completion(subject: Subject) -> None:
    if not subject.provider.capabilities.completions:
        pytest.skip("no /v1/completions")
    req = CompletionRequest(model=PUBLIC, prompt="Once upon a time", max_tokens=8, temperature=0.0)
    resp = await subject.provider.complete_text(req)
    assert resp.model == PUBLIC
    assert resp.choices
    assert resp.choices[0].finish_reason in {"stop", "length"}
    assert resp.usage.prompt_tokens > 0
    chunks = [c async for c in subject.provider.stream_text(req)]
    assert sum(1 for c in chunks for ch in c.choices if ch.finish_reason) == 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    if subject.deterministic:
        assert "".join(ch.text for c in chunks for ch in c.choices) == resp.choices[0].text


async def test_embeddings(subject: Subject) -> None:
    if not subject.provider.capabilities.embeddings:
        pytest.skip("no /v1/embeddings")
    inputs = ["the cat sat", "on the mat", "the cat sat"]
    resp = await subject.provider.embed(EmbeddingRequest(model=PUBLIC, input=inputs))
    assert resp.model == PUBLIC
    assert len(resp.data) == 3
    assert len({len(v) for v in resp.data}) == 1
    assert resp.data[0] == resp.data[2]
    assert resp.data[0] != resp.data[1]
    assert resp.usage.prompt_tokens > 0


async def test_aclose_is_idempotent(make_subject: Make) -> None:
    async with make_subject() as s:
        await s.provider.complete(chat(max_tokens=2))
        await s.provider.aclose()
        await s.provider.aclose()
