"""Failover against a real HTTP upstream (the mock upstream process, through the OpenAI-compatible
provider): an error inside a 200 stream before content, a reset connection, a slow first token, and a
mid-stream error after content (which ends the stream instead of failing over)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from tests.support.mock_upstream import start_mock_upstream, stop
from tests.support.routing_kit import group, request

from tollhouse.errors import UpstreamUnavailable
from tollhouse.gateway import Gateway
from tollhouse.operations import CHAT
from tollhouse.providers.mock import MockProvider
from tollhouse.providers.openai_compat import OpenAICompatProvider
from tollhouse.providers.registry import Deployment, ModelRegistry
from tollhouse.routing.router import Router
from tollhouse.settings import MockModel, OpenAIModel, RoutingSettings
from tollhouse.types import RequestContext


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    proc, base = start_mock_upstream()
    yield base
    stop(proc)


@pytest.fixture
async def gateway(upstream: str) -> AsyncIterator[Gateway]:
    remote = OpenAIModel(name="remote", api_base=upstream, timeouts={"ttft_s": 0.3})  # type: ignore[arg-type]
    backup = MockModel(name="backup", reply="from backup")
    registry = ModelRegistry(
        [Deployment(remote, OpenAICompatProvider(remote)), Deployment(backup, MockProvider(backup))]
    )
    routing = RoutingSettings.model_validate(
        {"retry": {"max_retries": 1}, "groups": [group("g", "remote", "backup")]}
    )
    yield Gateway(registry=registry, router=Router(registry, routing))
    await registry.aclose()


@pytest.mark.parametrize(
    ("scenario", "cls"),
    [
        ("early_error_in_stream", "server_error"),
        ("reset", "server_error"),
        ("slow_first_token:3000", "timeout"),
    ],
)
async def test_stream_fails_over_before_content(gateway: Gateway, scenario: str, cls: str) -> None:
    # A reset after the request was sent is "server disconnected" (the upstream may have seen it), not a
    # connection error; both are retry-safe.
    ctx = RequestContext(request_id="u")
    stream = await gateway.handle_stream(ctx, CHAT, request("g", f"mock:{scenario}", stream=True))
    text = "".join([c.delta.content or "" async for chunk in stream for c in chunk.choices])
    assert text == "from backup" and ctx.failures == [f"remote:{cls}"]


async def test_error_after_content_ends_the_stream(gateway: Gateway) -> None:
    ctx = RequestContext(request_id="u")
    stream = await gateway.handle_stream(ctx, CHAT, request("g", "mock:error_in_stream", stream=True))
    seen: list[str] = []

    async def consume() -> None:
        async for chunk in stream:
            seen.extend(c.delta.content or "" for c in chunk.choices)

    with pytest.raises(UpstreamUnavailable):
        await consume()
    assert "".join(seen).startswith("echo") and ctx.deployment == "remote" and ctx.status == 502
