"""Streams fail over only before their first content chunk; after it, a failure ends the stream with an
error (never a hang) and counts against the deployment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from tests.support.routing_kit import Kit, group, request

from tollhouse.errors import UpstreamTimeout, UpstreamUnavailable
from tollhouse.gateway import Gateway
from tollhouse.operations import CHAT, COMPLETIONS
from tollhouse.providers.mock import MockProvider
from tollhouse.providers.registry import Deployment, ModelRegistry
from tollhouse.routing.router import Router
from tollhouse.settings import MockModel, RoutingSettings
from tollhouse.types import ChatChunk, ChatRequest, ChunkChoice, Delta, RequestContext


async def test_error_before_the_first_chunk_fails_over() -> None:
    kit = Kit({"a": {"faults": ["error_in_stream:0"]}, "b": {}}, {"groups": [group("g", "a", "b")]})
    words, ctx = await kit.stream("g")
    assert "".join(words) == "from b" and ctx.failures == ["a:server_error"] and ctx.status == 200


async def test_error_after_content_ends_the_stream_and_is_counted() -> None:
    kit = Kit(
        {"a": {"faults": ["error_in_stream:1"], "reply": "one two three"}, "b": {}},
        {"groups": [group("g", "a", "b")]},
    )
    ctx = RequestContext(request_id="s")
    stream = await kit.gateway.handle_stream(ctx, CHAT, request("g", stream=True))
    got: list[str] = []

    async def consume() -> None:
        async for chunk in stream:
            got.extend(c.delta.content or "" for c in chunk.choices)

    with pytest.raises(UpstreamUnavailable, match="inside the stream"):
        await consume()
    assert "".join(got) == "one" and kit.calls("b") == 0  # committed: no fallback after content
    assert ctx.status == 502 and kit.router.targets["a"].breaker.consecutive == 1
    assert kit.router.targets["a"].in_flight == 0


async def test_mid_stream_disconnect_ends_with_an_error() -> None:
    kit = Kit({"a": {"faults": ["drop:2"], "reply": "one two three four"}})
    ctx = RequestContext(request_id="s")
    stream = await kit.gateway.handle_stream(ctx, CHAT, request("a", stream=True))
    with pytest.raises(UpstreamUnavailable, match="ended early"):
        async for _ in stream:
            pass


async def test_slow_first_token_beyond_ttft_fails_over() -> None:
    kit = Kit(
        {"a": {"faults": ["slow_first_token:5000"], "timeouts": {"ttft_s": 0.05}}, "b": {}},
        {"groups": [group("g", "a", "b")]},
    )
    t0 = time.perf_counter()
    words, ctx = await kit.stream("g")
    assert "".join(words) == "from b" and ctx.failures == ["a:timeout"]
    assert time.perf_counter() - t0 < 1.0


async def test_stalled_stream_is_ended_by_the_idle_timeout() -> None:
    kit = Kit({"a": {"faults": ["stall:2"], "reply": "one two three", "timeouts": {"stream_idle_s": 0.05}}})
    ctx = RequestContext(request_id="s")
    stream = await kit.gateway.handle_stream(ctx, CHAT, request("a", stream=True))
    t0 = time.perf_counter()
    with pytest.raises(UpstreamTimeout, match="idle"):
        async for _ in stream:
            pass
    assert time.perf_counter() - t0 < 1.0 and ctx.status == 504


async def test_stalled_stream_is_ended_at_total_s_whatever_the_provider() -> None:
    # No idle limit set and a read limit far away: the whole-stream limit still holds.
    timeouts = {"total_s": 0.3, "read_s": 60}
    kit = Kit({"a": {"faults": ["stall:1"], "reply": "one two three", "timeouts": timeouts}})
    ctx = RequestContext(request_id="s")
    t0 = time.perf_counter()
    stream = await kit.gateway.handle_stream(ctx, CHAT, request("a", stream=True))
    got: list[str] = []

    async def consume() -> None:
        async with asyncio.timeout(5):  # unbounded, the stall lasts an hour
            async for chunk in stream:
                got.extend(c.delta.content or "" for c in chunk.choices)

    with pytest.raises(UpstreamTimeout, match=r"total_s of 0\.3 s"):
        await consume()
    assert got == ["one"] and 0.25 < time.perf_counter() - t0 < 1.0
    assert ctx.status == 504 and kit.router.targets["a"].in_flight == 0
    assert kit.providers["a"].cancelled == 1  # the upstream call was closed


async def test_read_s_bounds_the_gap_between_chunks_when_no_idle_limit_is_set() -> None:
    kit = Kit({"a": {"faults": ["stall:2"], "reply": "one two three", "timeouts": {"read_s": 0.1}}})
    ctx = RequestContext(request_id="s")
    stream = await kit.gateway.handle_stream(ctx, CHAT, request("a", stream=True))
    t0 = time.perf_counter()

    async def consume() -> None:
        async with asyncio.timeout(5):
            async for _ in stream:
                pass

    with pytest.raises(UpstreamTimeout, match=r"idle for more than 0\.1 s"):
        await consume()
    assert time.perf_counter() - t0 < 1.0 and ctx.status == 504


async def test_slow_but_steady_stream_is_not_cut_by_the_idle_limit() -> None:
    # Every gap is under the idle limit though the whole stream is longer: the timer re-arms, never cuts.
    kit = Kit({"a": {"reply": " ".join(["w"] * 8), "chunk_ms": 40, "timeouts": {"stream_idle_s": 0.1}}})
    words, ctx = await kit.stream("a")
    assert len(words) == 8 and ctx.status == 200


class RoleThenError(MockProvider):
    """A 200 stream whose only chunk before the error is a bare role announcement (OpenAI's first event)."""

    async def stream(self, req: ChatRequest) -> AsyncIterator[ChatChunk]:
        self.calls += 1
        yield ChatChunk("x", req.model, [ChunkChoice(0, Delta(role="assistant", content=""))])
        raise UpstreamUnavailable("error event inside the stream")


async def test_role_only_chunk_does_not_commit_the_stream() -> None:
    a_cfg = MockModel(name="a")
    b_cfg = MockModel(name="b", reply="from b")
    registry = ModelRegistry(
        [Deployment(a_cfg, RoleThenError(a_cfg)), Deployment(b_cfg, MockProvider(b_cfg))]
    )
    routing = RoutingSettings.model_validate({"groups": [group("g", "a", "b")]})
    gw = Gateway(registry=registry, router=Router(registry, routing))
    ctx = RequestContext(request_id="s")
    stream = await gw.handle_stream(ctx, CHAT, request("g", stream=True))
    text = "".join([c.delta.content or "" async for chunk in stream for c in chunk.choices])
    assert text == "from b" and ctx.deployment == "b" and ctx.attempts == 2


async def test_completion_streams_fail_over_too() -> None:
    from tollhouse.types import CompletionRequest

    kit = Kit({"a": {"faults": ["status:503"]}, "b": {}}, {"groups": [group("g", "a", "b")]})
    ctx = RequestContext(request_id="s")
    stream = await kit.gateway.handle_stream(
        ctx, COMPLETIONS, CompletionRequest(model="g", prompt="hi", stream=True)
    )
    text = "".join([c.text async for chunk in stream for c in chunk.choices])
    assert text == "from b" and ctx.deployment == "b"
