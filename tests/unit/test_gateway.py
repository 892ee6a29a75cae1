"""The Gateway's stage seams: every stage is called, reservations settle exactly once, streams finish in
``finally`` even when the consumer walks away, and every request is recorded once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tollhouse.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ModelNotFound,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from tollhouse.gateway import Gateway
from tollhouse.operations import CHAT
from tollhouse.pipeline.admission import Reservation
from tollhouse.providers.mock import MockProvider
from tollhouse.providers.registry import Deployment, ModelRegistry
from tollhouse.settings import MockModel
from tollhouse.types import (
    ChatChunk,
    ChatRequest,
    Estimate,
    GuardInput,
    Message,
    Principal,
    RequestContext,
    Usage,
)


class RecordingLimiter:
    def __init__(self) -> None:
        self.estimates: list[Estimate] = []
        self.settled: list[Usage | None] = []

    async def admit(self, ctx: RequestContext, estimate: Estimate) -> Reservation:
        self.estimates.append(estimate)
        limiter = self

        class R:
            async def settle(self, usage: Usage | None) -> None:
                limiter.settled.append(usage)

        return R()


class RecordingLedger:
    def __init__(self) -> None:
        self.records: list[RequestContext] = []

    def record(self, ctx: RequestContext) -> None:
        self.records.append(ctx)

    async def aclose(self) -> None:
        return None


class UpperGuards:
    """Rewrites input to upper case and tags output, to prove both phases run."""

    async def check_input(self, ctx: RequestContext, inp: GuardInput) -> list[Message]:
        return [Message(role=m.role, content=m.text().upper()) for m in inp.messages]

    async def check_output(self, ctx: RequestContext, answers: list[Message]) -> list[Message]:
        return [Message(m.role, f"[checked] {m.content}") for m in answers]

    async def guard_stream(
        self, ctx: RequestContext, chunks: AsyncIterator[ChatChunk]
    ) -> AsyncIterator[ChatChunk]:
        async for c in chunks:
            yield c

    def close(self) -> None:
        return None


class DenyAll:
    async def authenticate(self, ctx: RequestContext, credential: str | None) -> Principal:
        raise AuthenticationFailed("no")


def make(**mock: object) -> tuple[Gateway, MockProvider, RecordingLimiter, RecordingLedger]:
    cfg = MockModel.model_validate({"name": "m", "max_output_tokens": 64, **mock})
    provider = MockProvider(cfg)
    registry = ModelRegistry([Deployment(cfg, provider)])
    limiter, ledger = RecordingLimiter(), RecordingLedger()
    return (
        Gateway(registry=registry, limiter=limiter, ledger=ledger, guards=UpperGuards()),
        provider,
        limiter,
        ledger,
    )


def req(model: str = "m", **kw: object) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message(role="user", content="hello world")], **kw)  # type: ignore[arg-type]


async def test_chat_runs_every_stage_and_settles_with_usage() -> None:
    gw, _, limiter, ledger = make()
    ctx = RequestContext(request_id="r1")
    resp = await gw.handle(ctx, CHAT, req())
    assert resp.choices[0].message.content == "[checked] echo: HELLO WORLD"
    assert limiter.estimates[0].max_output_tokens == 64
    assert limiter.settled == [resp.usage]
    assert ledger.records == [ctx]
    assert ctx.deployment == "m" and ctx.status == 200 and ctx.usage == resp.usage


async def test_failure_settles_with_none_and_is_recorded() -> None:
    gw, _, limiter, ledger = make(fail_status=429, retry_after_s=60)  # longer than routing waits
    ctx = RequestContext(request_id="r2")
    with pytest.raises(UpstreamRateLimited):
        await gw.handle(ctx, CHAT, req())
    assert limiter.settled == [None]
    assert ledger.records == [ctx] and ctx.status == 429


async def test_unknown_model_and_bad_max_tokens_fail_before_admission() -> None:
    gw, _, limiter, _ = make()
    with pytest.raises(ModelNotFound):
        await gw.handle(RequestContext(request_id="x"), CHAT, req("nope"))
    with pytest.raises(InvalidRequest) as e:
        await gw.handle(RequestContext(request_id="x"), CHAT, req(max_tokens=65))
    assert e.value.param == "max_tokens"
    assert limiter.estimates == []


async def test_stream_settles_in_finally_when_consumer_stops_early() -> None:
    gw, provider, limiter, ledger = make(reply="a b c d e f g h", chunk_ms=1)
    ctx = RequestContext(request_id="r3")
    stream = await gw.handle_stream(ctx, CHAT, req(include_usage=True))
    got = []
    async for chunk in stream:
        got.append(chunk)
        if len(got) == 2:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert len(limiter.settled) == 1
    assert ledger.records == [ctx]
    assert ctx.status == 499  # the client went away
    assert provider.cancelled == 1


async def test_stream_usage_hidden_unless_asked_but_always_settled() -> None:
    gw, _, limiter, _ = make(reply="a b c")
    stream = await gw.handle_stream(RequestContext(request_id="r4"), CHAT, req())
    chunks = [c async for c in stream]
    assert all(c.usage is None for c in chunks)
    assert limiter.settled[0] is not None and limiter.settled[0].completion_tokens == 3


async def test_stream_error_before_first_chunk_raises_and_records() -> None:
    gw, _, limiter, ledger = make(fail_status=503)
    ctx = RequestContext(request_id="r5")
    with pytest.raises(UpstreamUnavailable) as e:
        await gw.handle_stream(ctx, CHAT, req())
    assert e.value.status == 503
    assert limiter.settled == [None] and ledger.records == [ctx]


async def test_authentication_seam() -> None:
    gw, _, _, _ = make()
    gw.auth = DenyAll()
    with pytest.raises(AuthenticationFailed):
        await gw.authenticate(RequestContext(request_id="r6"), "key")


async def test_gateway_tools_reserve_the_whole_loop_and_skip_the_cache() -> None:
    from tollhouse.config.tools import ToolsSettings
    from tollhouse.tools.build import Tools
    from tollhouse.types import Raw

    gw, _, limiter, ledger = make()
    tools = Tools(ToolsSettings(enabled=True, max_iterations=3, max_calls_per_round=1, result_max_bytes=100))
    gw.tools = tools.loop
    await gw.handle(RequestContext(request_id="plain"), CHAT, req())
    ctx = RequestContext(request_id="tooled")
    resp = await gw.handle(ctx, CHAT, req(tools=[Raw({"type": "tollhouse", "name": "calculator"})]))
    plain, tooled = limiter.estimates
    assert tooled.max_output_tokens == 3 * plain.max_output_tokens
    # 3 calls; call k also carries k-1 answers (64) and k-1 results (100 + 16): 0 + 1 + 2 = 3 of each
    assert tooled.prompt_tokens > 3 * plain.prompt_tokens + 3 * (64 + 116) - 1
    assert ctx.tools_used == [] and ctx.tool_rounds == 1  # the mock answered without calling
    assert limiter.settled[-1] == resp.usage and ledger.records[-1] is ctx
    assert ctx.cache_status is None  # answers that may use tools are not looked up in the cache
