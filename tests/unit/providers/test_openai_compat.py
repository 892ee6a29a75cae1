"""OpenAICompatProvider against real HTTP: the mock upstream process, and in-process servers for raw SSE.

Covers error mapping for every upstream failure, what is sent upstream (model id, stream_options, bearer
key), SSE parsing edge cases, and that closing a stream drops the upstream request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from tests.support.mock_upstream import (
    TOOL_ARGUMENTS,
    TOOL_CALL_ID,
    admin,
    free_port,
    start_mock_upstream,
    stop,
)

from tollhouse.errors import (
    UpstreamBadRequest,
    UpstreamContentFiltered,
    UpstreamContextWindowExceeded,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tollhouse.providers.openai_compat import OpenAICompatProvider
from tollhouse.providers.sse import SSEDecoder
from tollhouse.settings import OpenAIModel, Timeouts
from tollhouse.types import (
    ChatChunk,
    ChatRequest,
    CompletionRequest,
    ContentPart,
    EmbeddingRequest,
    ImagePart,
    Message,
    Raw,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolSpec,
)

NAME = "gpt-public"
KEY_ENV = "TOLLHOUSE_TEST_UPSTREAM_KEY"
KEY = "sk-test-0123456789abcdef"
Factory = Callable[..., OpenAICompatProvider]


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    proc, base = start_mock_upstream()
    try:
        yield base
    finally:
        stop(proc)


@pytest.fixture
async def make(upstream: str) -> AsyncIterator[Factory]:
    built: list[OpenAICompatProvider] = []

    def factory(**fields: Any) -> OpenAICompatProvider:
        fields.setdefault("api_base", upstream)
        provider = OpenAICompatProvider(
            OpenAIModel(name=NAME, model="upstream-id", embeddings=True, **fields)
        )
        built.append(provider)
        return provider

    yield factory
    for p in built:
        await p.aclose()


async def upstream_admin(base: str, path: str, method: str = "GET") -> Any:
    return await asyncio.to_thread(admin, base, path, method)


def chat(text: str = "hello there", **kw: Any) -> ChatRequest:
    return ChatRequest(model=NAME, messages=[Message("user", text)], **kw)


async def drain(stream: AsyncIterator[ChatChunk], into: list[ChatChunk]) -> None:
    async for chunk in stream:
        into.append(chunk)


async def run(provider: OpenAICompatProvider, req: ChatRequest, mode: str) -> list[ChatChunk]:
    if mode == "complete":
        await provider.complete(req)
        return []
    return [c async for c in provider.stream(req)]


# ---- happy path and what goes upstream ----------------------------------------------------------------


async def test_complete_uses_upstream_id_and_answers_with_public_name(make: Factory, upstream: str) -> None:
    await upstream_admin(upstream, "/__requests", "DELETE")
    resp = await make().complete(chat(max_tokens=5, temperature=0.5, stop=["zzz"]))
    assert resp.model == NAME
    assert resp.choices[0].message.content == "echo: hello there"
    assert resp.usage.prompt_tokens == 2
    assert resp.usage.completion_tokens == 3
    [rec] = await upstream_admin(upstream, "/__requests")
    assert rec["path"] == "/v1/chat/completions"
    assert rec["json"]["model"] == "upstream-id"
    assert rec["json"]["max_tokens"] == 5
    assert rec["json"]["stop"] == ["zzz"]
    assert "stream" not in rec["json"]
    assert "authorization" not in rec["headers"]  # no api_key_env: no key sent


async def test_stream_forwards_include_usage_and_ends_with_usage(make: Factory, upstream: str) -> None:
    await upstream_admin(upstream, "/__requests", "DELETE")
    chunks = [c async for c in make().stream(chat(include_usage=False))]
    [rec] = await upstream_admin(upstream, "/__requests")
    assert rec["json"]["stream"] is True
    assert rec["json"]["stream_options"] == {"include_usage": True}
    assert "".join(ch.delta.content or "" for c in chunks for ch in c.choices) == "echo: hello there"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    assert all(c.model == NAME for c in chunks)


@pytest.mark.parametrize("mode", ["complete", "stream"])
async def test_vendor_extras_reach_the_upstream_only_when_allowed(
    make: Factory, upstream: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    await upstream_admin(upstream, "/__requests", "DELETE")
    vendor = {"top_k": 20, "repetition_penalty": 1.1, "chat_template_kwargs": {"enable_thinking": False}}
    allowing = make(extra_params=["top_k", "repetition_penalty", "chat_template_kwargs"])
    with caplog.at_level("INFO", logger="tollhouse.providers"):
        await run(allowing, chat(vendor={**vendor, "mirostat": 2}), mode)
        await run(make(), chat(vendor=vendor), mode)
    first, second = [r["json"] for r in await upstream_admin(upstream, "/__requests")]
    assert {k: first[k] for k in vendor} == vendor
    assert "mirostat" not in first
    assert not set(vendor) & set(second)
    dropped = [r for r in caplog.records if r.getMessage().startswith("dropped request fields")]
    assert [r.fields for r in dropped] == [["mirostat"], sorted(vendor)]


async def test_vendor_extras_on_text_completions(make: Factory, upstream: str) -> None:
    await upstream_admin(upstream, "/__requests", "DELETE")
    provider = make(extra_params=["min_p"])
    req = CompletionRequest(model=NAME, prompt="hi", vendor={"min_p": 0.05, "top_k": 3})
    await provider.complete_text(req)
    [c async for c in provider.stream_text(req)]
    bodies = [r["json"] for r in await upstream_admin(upstream, "/__requests")]
    assert [(b.get("min_p"), "top_k" in b) for b in bodies] == [(0.05, False), (0.05, False)]


async def test_tools_parts_and_tool_calls_both_ways(make: Factory, upstream: str) -> None:
    """Typed tools, tool choice, response format and content parts go upstream in OpenAI's JSON; the
    upstream's tool calls come back typed, whole or as stream fragments."""
    await upstream_admin(upstream, "/__requests", "DELETE")
    weather = ToolSpec("get_weather", "Weather for a city", {"type": "object"}, strict=True)
    content: list[ContentPart] = [
        TextPart("mock:tool_call"),
        ImagePart(url="https://example.com/a.png", detail="low"),
        Raw({"type": "future_part", "x": 1}),
    ]
    history = [
        Message("user", "earlier"),
        Message("assistant", None, tool_calls=[ToolCall("call_0", "get_weather", '{"city": "Rome"}')]),
        Message("tool", "18C", tool_call_id="call_0"),
        Message("user", content),
    ]
    req = ChatRequest(
        model=NAME,
        messages=history,
        tools=[weather, Raw({"type": "custom", "custom": {"name": "g"}})],
        tool_choice=ToolChoice("tool", "get_weather"),
        response_format=ResponseFormat("json_object"),
    )
    provider = make()
    caps = provider.capabilities
    assert caps.tools and caps.vision and caps.audio and caps.json_schema and caps.streaming
    resp = await provider.complete(req)
    assert resp.choices[0].finish_reason == "tool_calls"
    assert resp.choices[0].message.tool_calls == [ToolCall(TOOL_CALL_ID, "get_weather", TOOL_ARGUMENTS)]
    [rec] = await upstream_admin(upstream, "/__requests")
    body = rec["json"]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object"},
                "strict": True,
            },
        },
        {"type": "custom", "custom": {"name": "g"}},
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][1]["tool_calls"] == [
        {
            "id": "call_0",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
        }
    ]
    assert body["messages"][2] == {"role": "tool", "content": "18C", "tool_call_id": "call_0"}
    assert body["messages"][3]["content"] == [
        {"type": "text", "text": "mock:tool_call"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
        {"type": "future_part", "x": 1},
    ]
    chunks = [c async for c in provider.stream(req)]
    fragments = [t for c in chunks for ch in c.choices for t in ch.delta.tool_calls or []]
    assert all(isinstance(t, ToolCallDelta) and t.index == 0 for t in fragments)
    first = fragments[0]
    assert isinstance(first, ToolCallDelta)
    assert (first.id, first.type, first.name) == (TOOL_CALL_ID, "function", "get_weather")
    assert "".join(t.arguments or "" for t in fragments if isinstance(t, ToolCallDelta)) == TOOL_ARGUMENTS
    assert chunks[-2].choices[0].finish_reason == "tool_calls"


async def test_text_completions_and_embeddings(make: Factory) -> None:
    provider = make()
    req = CompletionRequest(model=NAME, prompt="once upon a time", max_tokens=2)
    resp = await provider.complete_text(req)
    assert (resp.model, resp.choices[0].text, resp.choices[0].finish_reason) == (NAME, "echo: once", "length")
    chunks = [c async for c in provider.stream_text(req)]
    assert "".join(ch.text for c in chunks for ch in c.choices) == "echo: once"
    assert chunks[-1].usage is not None
    emb = await provider.embed(EmbeddingRequest(model=NAME, input=["a b", "c"], dimensions=4))
    assert emb.model == NAME
    assert [len(v) for v in emb.data] == [4, 4]
    assert emb.usage.prompt_tokens == 3


async def test_api_key_from_env_is_sent_as_bearer(
    make: Factory, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    await upstream_admin(upstream, "/__requests", "DELETE")
    await make(api_key_env=KEY_ENV).complete(chat())
    [rec] = await upstream_admin(upstream, "/__requests")
    assert rec["headers"]["authorization"] == f"Bearer {KEY}"


async def test_missing_key_env_var_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    cfg = OpenAIModel(name=NAME, api_base="http://127.0.0.1:9/v1", api_key_env=KEY_ENV)
    with pytest.raises(ValueError, match=KEY_ENV):
        OpenAICompatProvider(cfg)


def test_must_be_built_inside_an_event_loop() -> None:
    with pytest.raises(RuntimeError, match="event loop"):
        OpenAICompatProvider(OpenAIModel(name=NAME, api_base="http://127.0.0.1:9/v1"))


async def test_rejected_upstream_key_is_a_gateway_error_without_the_key(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    provider = make(api_key_env=KEY_ENV)
    for mode in ("complete", "stream"):
        with pytest.raises(UpstreamError) as info:
            await run(provider, chat("status:401"), mode)
        assert type(info.value) is UpstreamError
        assert info.value.status == 502
        assert "credentials" in info.value.message
        assert KEY not in str(info.value)
        assert NAME in str(info.value)


# ---- error mapping --------------------------------------------------------------------------------------

CASES = [
    ("status:429:retry=3", UpstreamRateLimited, 429, 3.0),
    ("status:429:retry_ms=1500", UpstreamRateLimited, 429, 1.5),
    ("status:500", UpstreamUnavailable, 502, None),
    ("status:502", UpstreamUnavailable, 502, None),
    ("status:503:retry=2", UpstreamUnavailable, 503, 2.0),
    ("context", UpstreamContextWindowExceeded, 400, None),
    ("filter", UpstreamContentFiltered, 400, None),
    ("status:404", UpstreamBadRequest, 400, None),
    ("status:413", UpstreamBadRequest, 400, None),
    ("status:422", UpstreamBadRequest, 400, None),
    ("invalid_json", UpstreamUnavailable, 502, None),
    ("error_in_stream", UpstreamUnavailable, 502, None),
    ("drop_stream", UpstreamUnavailable, 502, None),
]


@pytest.mark.parametrize("mode", ["complete", "stream"])
@pytest.mark.parametrize(("scenario", "error", "status", "retry_after"), CASES)
async def test_upstream_failures_map_onto_the_error_tree(
    make: Factory,
    scenario: str,
    error: type[UpstreamError],
    status: int,
    retry_after: float | None,
    mode: str,
) -> None:
    with pytest.raises(error) as info:
        await run(make(), chat(scenario), mode)
    assert type(info.value) is error
    assert info.value.status == status
    assert info.value.retry_after == retry_after
    assert NAME in info.value.message
    if error is UpstreamContextWindowExceeded:
        assert info.value.code == "context_length_exceeded"
    if error is UpstreamBadRequest:
        assert "simulated HTTP" in info.value.message  # the upstream's own message is relayed


async def test_retry_after_as_http_date(make: Factory) -> None:
    with pytest.raises(UpstreamRateLimited) as info:
        await make().complete(chat("status:429:retry_date=30"))
    assert info.value.retry_after is not None
    assert 27 <= info.value.retry_after <= 31


@pytest.mark.parametrize("mode", ["complete", "stream"])
async def test_slow_upstream_times_out(make: Factory, mode: str) -> None:
    provider = make(timeouts=Timeouts(read_s=0.2, total_s=5))
    with pytest.raises(UpstreamTimeout, match=NAME):
        await run(provider, chat("slow:2000"), mode)


async def test_stalled_stream_times_out_after_content(make: Factory) -> None:
    got: list[ChatChunk] = []
    provider = make(timeouts=Timeouts(read_s=0.3, total_s=5))
    with pytest.raises(UpstreamTimeout):
        await drain(provider.stream(chat("stall_stream")), got)
    assert got


@pytest.mark.parametrize("mode", ["complete", "stream"])
async def test_connection_refused_is_unavailable(make: Factory, mode: str) -> None:
    provider = make(api_base=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(UpstreamUnavailable, match=NAME):
        await run(provider, chat(), mode)
    assert not (await provider.health()).ok


async def test_error_in_stream_is_raised_from_the_iterator(make: Factory) -> None:
    got: list[ChatChunk] = []
    with pytest.raises(UpstreamUnavailable, match="error while processing"):
        await drain(make().stream(chat("error_in_stream")), got)
    assert got  # the error came after content, from inside the iteration


# ---- cancellation, health, lifecycle --------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["stall_stream", "slow_stream:300"])
async def test_closing_the_stream_disconnects_the_upstream(
    make: Factory, upstream: str, scenario: str
) -> None:
    before = (await upstream_admin(upstream, "/__stats")).get("stream_disconnects", 0)
    stream = make().stream(chat(scenario))
    assert isinstance(stream, AsyncGenerator)
    await anext(stream)
    await stream.aclose()
    for _ in range(100):
        if (await upstream_admin(upstream, "/__stats")).get("stream_disconnects", 0) > before:
            break
        await asyncio.sleep(0.02)
    assert (await upstream_admin(upstream, "/__stats"))["stream_disconnects"] == before + 1


async def test_health_and_idempotent_close(make: Factory) -> None:
    provider = make()
    health = await provider.health()
    assert health.ok
    assert health.latency_ms > 0
    await provider.aclose()
    await provider.aclose()


# ---- raw SSE from an in-process server --------------------------------------------------------------------

Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve_raw() -> AsyncIterator[Serve]:
    """Start an upstream that writes the given byte pieces, pausing between them (separate TCP reads)."""
    servers: list[TestServer] = []

    async def start(pieces: list[bytes], content_type: str = "text/event-stream") -> str:
        async def handler(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": content_type})
            await resp.prepare(request)
            for piece in pieces:
                await resp.write(piece)
                await asyncio.sleep(0.01)
            await resp.write_eof()
            return resp

        app = web.Application()
        app.router.add_post("/v1/chat/completions", handler)
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("/v1"))

    yield start
    for server in servers:
        await server.close()


def chunk_json(content: str | None, finish: str | None = None, usage: str = "") -> bytes:
    delta = f'{{"content": "{content}"}}' if content is not None else "{}"
    finish_json = f'"{finish}"' if finish else "null"
    tail = f', "usage": {usage}' if usage else ""
    choice = f'{{"index": 0, "delta": {delta}, "finish_reason": {finish_json}}}'
    return f'{{"id": "x", "choices": [{choice}]{tail}}}'.encode()


USAGE = '{"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}'


async def test_sse_split_lines_crlf_comments_and_usage_on_a_content_chunk(
    make: Factory, serve_raw: Serve
) -> None:
    first = b"data: " + chunk_json("Hel") + b"\r\n\r\n"
    pieces = [b": keep-alive\r\n\r\n", first[:15], first[15:], b"event: message\r\nid: 7\r\n"]
    pieces += [b"data: " + chunk_json("lo", "stop", USAGE) + b"\r\n\r\n", b"data: [DO", b"NE]\r\n\r\n"]
    base = await serve_raw(pieces)
    chunks = [c async for c in make(api_base=base).stream(chat())]
    assert [ch.delta.content for c in chunks for ch in c.choices] == ["Hel", "lo"]
    assert [c.usage for c in chunks[:-1]] == [None, None]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 4


async def test_sse_clean_end_without_done(make: Factory, serve_raw: Serve) -> None:
    finished = await serve_raw([b"data: " + chunk_json("a") + b"\n\n", b"data: " + chunk_json(None, "stop")])
    chunks = [c async for c in make(api_base=finished).stream(chat())]
    assert chunks[-1].choices[0].finish_reason == "stop"  # lenient: the answer was complete
    cut = await serve_raw([b"data: " + chunk_json("a") + b"\n\n"])
    with pytest.raises(UpstreamUnavailable, match="ended early"):
        _ = [c async for c in make(api_base=cut).stream(chat())]


async def test_sse_error_event_and_json_answer_to_a_stream(make: Factory, serve_raw: Serve) -> None:
    event = await serve_raw([b'event: error\ndata: {"error": {"message": "overloaded", "code": 503}}\n\n'])
    with pytest.raises(UpstreamUnavailable) as info:
        _ = [c async for c in make(api_base=event).stream(chat())]
    assert info.value.status == 503
    body = b'{"error": {"message": "maximum context length exceeded", "code": null}}'
    as_json = await serve_raw([body], content_type="application/json")
    with pytest.raises(UpstreamContextWindowExceeded):
        _ = [c async for c in make(api_base=as_json).stream(chat())]


def test_sse_decoder_joins_multiline_data_and_flushes_leftovers() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\ndata: b\n") == []
    assert decoder.feed(b"\nevent: error\ndata: c") == [(b"", b"a\nb")]
    assert decoder.flush() == [(b"error", b"c")]
