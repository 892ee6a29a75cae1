"""EncoderProvider: embeddings from the embedded encoder, input validation, dimensions, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from tollhouse.embeddings.encoder import SentenceEncoder
from tollhouse.errors import InvalidRequest
from tollhouse.providers.base import Provider
from tollhouse.providers.encoder import EncoderProvider
from tollhouse.settings import EncoderModel
from tollhouse.types import ChatRequest, CompletionRequest, EmbeddingRequest, Message

NAME = "local-embed"


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


@pytest.fixture
async def provider(encoder: SentenceEncoder) -> AsyncIterator[EncoderProvider]:
    p = EncoderProvider(EncoderModel(name=NAME, max_batch=4), encoder=encoder)
    yield p
    await p.aclose()


def embed_req(*texts: str, dimensions: int | None = None) -> EmbeddingRequest:
    return EmbeddingRequest(model=NAME, input=list(texts), dimensions=dimensions)


async def test_embeds_every_input_in_order(provider: EncoderProvider, encoder: SentenceEncoder) -> None:
    assert isinstance(provider, Provider)
    resp = await provider.embed(embed_req("How do I reset my password?", "The weather is sunny"))
    assert resp.model == NAME
    assert [len(v) for v in resp.data] == [384, 384]
    expected = encoder.encode(["How do I reset my password?", "The weather is sunny"])
    np.testing.assert_allclose(np.array(resp.data), expected, atol=1e-6)
    assert resp.usage.prompt_tokens == encoder.count_tokens(
        ["How do I reset my password?", "The weather is sunny"]
    )
    assert resp.usage.completion_tokens == 0


async def test_concurrent_requests_are_all_served(provider: EncoderProvider) -> None:
    results = await asyncio.gather(*(provider.embed(embed_req(f"text {i}")) for i in range(6)))
    assert all(len(r.data) == 1 for r in results)


async def test_dimensions_truncate_and_renormalise(provider: EncoderProvider) -> None:
    full = (await provider.embed(embed_req("hello there"))).data[0]
    short = (await provider.embed(embed_req("hello there", dimensions=64))).data[0]
    assert len(short) == 64
    assert np.linalg.norm(short) == pytest.approx(1.0, abs=1e-5)
    head = np.array(full[:64])
    np.testing.assert_allclose(short, head / np.linalg.norm(head), atol=1e-6)


@pytest.mark.parametrize("dimensions", [0, 385])
async def test_dimensions_out_of_range_are_refused(provider: EncoderProvider, dimensions: int) -> None:
    with pytest.raises(InvalidRequest) as err:
        await provider.embed(embed_req("hello", dimensions=dimensions))
    assert err.value.param == "dimensions"


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        ([[1, 2, 3]], "token ids"),
        ([], "must not be empty"),
        (["ok", ""], "input[1] is an empty string"),
        (["a", "b", "c", "d", "e"], "at most 4 inputs"),
    ],
)
async def test_bad_input_is_refused(provider: EncoderProvider, inputs: list[object], fragment: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        await provider.embed(EmbeddingRequest(model=NAME, input=inputs))  # type: ignore[arg-type]
    assert err.value.param == "input"
    assert fragment in err.value.message


async def test_generation_is_refused_naming_the_model(provider: EncoderProvider) -> None:
    assert not provider.capabilities.chat
    assert provider.capabilities.embeddings
    assert not provider.capabilities.streaming
    chat = ChatRequest(model=NAME, messages=[Message("user", "hi")])
    text = CompletionRequest(model=NAME, prompt="hi")
    with pytest.raises(InvalidRequest) as err:
        await provider.complete(chat)
    assert err.value.param == "model"
    with pytest.raises(InvalidRequest):
        _ = [c async for c in provider.stream(chat)]
    with pytest.raises(InvalidRequest):
        await provider.complete_text(text)
    with pytest.raises(InvalidRequest):
        _ = [c async for c in provider.stream_text(text)]


async def test_loads_the_packaged_model_and_closes_idempotently() -> None:
    p = EncoderProvider(EncoderModel(name=NAME))
    assert (await p.health()).ok
    assert len((await p.embed(embed_req("hi"))).data[0]) == 384
    await p.aclose()
    await p.aclose()
    assert not (await p.health()).ok
