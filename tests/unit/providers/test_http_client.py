"""The upstream HTTP client (``providers.http``) against real loopback servers: framing, pooling, TLS,
timeouts, cancellation and broken answers."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.raw_http import Exchange, Handler, RawServer, answer, chunked, self_signed

from tollhouse.errors import UpstreamConnectionError, UpstreamUnavailable
from tollhouse.providers import http
from tollhouse.providers.openai_compat import OpenAICompatProvider
from tollhouse.settings import OpenAIModel
from tollhouse.types import ChatRequest, Message

JSON = {"Content-Type": "application/json"}
Start = Callable[..., Awaitable[tuple[RawServer, http.HttpClient]]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """start(handler, **client options) → (server, client); both closed at the end."""
    made: list[tuple[RawServer, http.HttpClient]] = []

    async def make(handler: Handler, **options: Any) -> tuple[RawServer, http.HttpClient]:
        server = RawServer(handler)
        base = await server.start()
        options.setdefault("max_connections", 4)
        options.setdefault("timeouts", http.Timeouts(connect=2, read=2, total=5))
        client = http.HttpClient(base, {"User-Agent": "tollhouse"}, **options)
        made.append((server, client))
        return server, client

    yield make
    for server, client in made:
        await client.aclose()
        await server.stop()


def serve_each(*answers: bytes) -> Handler:
    """Answer the requests on each connection with ``answers`` in turn, keeping the connection open."""

    async def handler(ex: Exchange) -> None:
        for data in answers:
            if await ex.request() is None:
                return
            await ex.send(data)
        await ex.closed_by_client(10)

    return handler


async def post(client: http.HttpClient, body: bytes = b'{"a":1}', **kw: Any) -> http.Response:
    return await client.request(client.target("POST", "/chat/completions", JSON), body, **kw)


# ---- framing and pooling ----------------------------------------------------------------------------------


async def test_request_line_headers_body_and_keep_alive_reuse(start: Start) -> None:
    server, client = await start(serve_each(*(answer(b'{"ok":%d}' % i) for i in range(3))))
    for i in range(3):
        resp = await post(client, extra={"traceparent": f"00-{i}"})
        assert (resp.status, resp.body, resp.content_type) == (200, b'{"ok":%d}' % i, "")
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    for line in (b"Host: 127.0.0.1:%d" % server.port, b"User-Agent: tollhouse", b"Content-Length: 7"):
        assert line in first
    assert first.endswith(b'traceparent: 00-0\r\nContent-Length: 7\r\n\r\n{"a":1}')


async def test_chunked_and_read_to_close_bodies(start: Start) -> None:
    _, client = await start(serve_each(chunked(b'{"a":', b'"b"}')))
    assert (await post(client)).body == b'{"a":"b"}'

    async def to_close(ex: Exchange) -> None:
        await ex.request()
        await ex.send(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"until":')
        await ex.send(b'"close"}')
        ex.writer.close()

    server, client = await start(to_close)
    resp = await post(client)
    assert (resp.body, resp.content_type) == (b'{"until":"close"}', "application/json")
    await post(client)  # not pooled: the next request opens a new connection
    assert server.connections == 2


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
async def test_compressed_answers_are_decoded(start: Start, encoding: str) -> None:
    text = b'{"text":"' + b"hello " * 2000 + b'"}'
    if encoding == "gzip":
        data = gzip.compress(text)
    elif encoding == "deflate":
        data = zlib.compress(text)
    else:
        z = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        data = z.compress(text) + z.flush()
    name = "deflate" if encoding == "raw-deflate" else encoding
    server, client = await start(
        serve_each(
            answer(data, f"Content-Encoding: {name}"),
            chunked(data[:10], data[10:], headers=(f"Content-Encoding: {name}",)),
        )
    )
    assert (await post(client)).body == text
    stream = await client.open(client.target("POST", "/chat", JSON), b"{}")
    got = b""
    while part := await stream.read():
        got += part
    stream.release()
    assert got == text
    assert b"Accept-Encoding: gzip, deflate" in server.requests[0]


async def test_connection_close_answer_and_server_closing_idle_connections(start: Start) -> None:
    async def handler(ex: Exchange) -> None:
        await ex.request()
        await ex.send(answer(b"1"))
        ex.writer.close()  # the server drops the idle connection after one answer

    server, client = await start(handler)
    assert (await post(client)).body == b"1"
    await asyncio.sleep(0.05)  # the close reaches the client: the pooled connection is marked
    assert (await post(client)).body == b"1"
    assert server.connections == 2

    server, client = await start(serve_each(answer(b"x", "Connection: close"), answer(b"y")))
    await post(client)
    await post(client)
    assert server.connections == 2


async def test_idle_connections_close_after_the_keep_alive_timeout(start: Start) -> None:
    server, client = await start(serve_each(answer(b"1")), keepalive_s=0.1)
    await post(client)
    for _ in range(100):  # serve_each reads on until the client closes
        if server.exchanges[0].eof:
            break
        await asyncio.sleep(0.02)
    assert server.exchanges[0].eof and client._count == 0


async def test_the_pool_is_bounded_and_a_full_pool_fails_after_the_connect_timeout(
    start: Start,
) -> None:
    gate = asyncio.Event()

    async def handler(ex: Exchange) -> None:
        while await ex.request() is not None:
            await gate.wait()
            await ex.send(answer(b"ok"))

    timeouts = http.Timeouts(connect=0.2, read=5, total=5)
    server, client = await start(handler, max_connections=2, timeouts=timeouts)
    held = [asyncio.create_task(post(client)) for _ in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(http.ConnectTimeout, match="no free connection"):
        await post(client)
    waiting = asyncio.create_task(post(client))
    await asyncio.sleep(0.05)
    gate.set()
    assert [r.body for r in await asyncio.gather(*held, waiting)] == [b"ok"] * 3
    assert server.connections == 2


# ---- TLS ------------------------------------------------------------------------------------------------


async def test_tls_with_sni_and_certificate_checks(start: Start, tmp_path: Path) -> None:
    server_ctx, client_ctx, names = self_signed(tmp_path)
    server = RawServer(serve_each(answer(b"secure"), answer(b"again")), server_ctx)
    base = (await server.start()).replace("127.0.0.1", "localhost")
    timeouts = http.Timeouts(connect=2, read=2, total=5)
    client = http.HttpClient(base, {}, max_connections=2, timeouts=timeouts, ssl_context=client_ctx)
    try:
        assert (await post(client)).body == b"secure"
        assert (await post(client)).body == b"again"
        assert names == ["localhost"] and server.connections == 1
        # The default context does not trust a self-signed certificate: a connection error, never a reply.
        strict = http.HttpClient(base, {}, max_connections=2, timeouts=timeouts)
        with pytest.raises(http.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await post(strict)
        await strict.aclose()
    finally:
        await client.aclose()
        await server.stop()


# ---- timeouts and cancellation --------------------------------------------------------------------------


async def test_read_timeout_and_total_timeout(start: Start) -> None:
    async def silent(ex: Exchange) -> None:
        await ex.request()
        await ex.closed_by_client(5)

    timeouts = http.Timeouts(connect=1, read=0.15, total=5)
    _, client = await start(silent, timeouts=timeouts)
    started = asyncio.get_running_loop().time()
    with pytest.raises(http.ReadTimeout, match="no bytes"):
        await post(client)
    assert 0.14 < asyncio.get_running_loop().time() - started < 1

    async def trickle(ex: Exchange) -> None:
        await ex.request()
        await ex.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):
            await asyncio.sleep(0.05)
            await ex.send(b"x")

    timeouts = http.Timeouts(connect=1, read=0.2, total=0.4)
    _, client = await start(trickle, timeouts=timeouts)
    with pytest.raises(http.ReadTimeout, match="total time"):
        await post(client)


async def test_cancelling_the_caller_closes_the_connection(start: Start) -> None:
    async def slow(ex: Exchange) -> None:
        await ex.request()
        await asyncio.sleep(10)

    server, client = await start(slow)
    task = asyncio.create_task(post(client))
    for _ in range(200):
        if server.requests:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await server.exchanges[0].closed_by_client(2)
    assert client._count == 0 and not client._idle

    async def streaming(ex: Exchange) -> None:
        await ex.request()
        await ex.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await asyncio.sleep(10)

    server, client = await start(streaming)
    stream = await client.open(client.target("POST", "/s", JSON), b"{}")
    assert await stream.read() == b"first"
    reader = asyncio.create_task(stream.read())
    await asyncio.sleep(0.05)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert await server.exchanges[0].closed_by_client(2)


async def test_connection_refused_is_a_connect_error() -> None:
    client = http.HttpClient(
        "http://127.0.0.1:9/v1", {}, max_connections=1, timeouts=http.Timeouts(connect=1, read=1, total=1)
    )
    with pytest.raises(http.ConnectError, match=r"cannot connect to 127\.0\.0\.1:9"):
        await post(client)
    assert client._count == 0
    await client.aclose()


# ---- streams --------------------------------------------------------------------------------------------


async def test_stream_body_arrives_piece_by_piece_and_a_big_one_is_read_whole(start: Start) -> None:
    step = asyncio.Event()
    big = bytes(range(256)) * 4096  # 1 MiB: past the high-water mark, so reading pauses and resumes

    async def handler(ex: Exchange) -> None:
        await ex.request()
        await ex.send(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"
        )
        await ex.send(b"6\r\ndata:1\r\n")
        await step.wait()
        for i in range(0, len(big), 65536):
            piece = big[i : i + 65536]
            await ex.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        await ex.send(b"0\r\n\r\n")
        await ex.request()
        await ex.send(answer(b"reused"))
        await ex.closed_by_client(5)

    server, client = await start(handler)
    stream = await client.open(client.target("POST", "/s", JSON), b"{}")
    assert (stream.status, stream.content_type) == (200, "text/event-stream")
    assert await stream.read() == b"data:1"
    step.set()
    await asyncio.sleep(0.2)  # the server writes far more than the high-water mark meanwhile
    got = b""
    while part := await stream.read():
        got += part
    assert got == big
    stream.release()
    assert (await post(client)).body == b"reused"
    assert server.connections == 1


async def test_a_stream_released_before_its_end_is_pooled_when_the_end_arrives(
    start: Start,
) -> None:
    async def handler(ex: Exchange) -> None:
        await ex.request()
        await ex.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n[END]\r\n")
        await asyncio.sleep(0.1)
        await ex.send(b"0\r\n\r\n")
        await ex.request()
        await ex.send(answer(b"next"))
        await ex.closed_by_client(5)

    server, client = await start(handler)
    stream = await client.open(client.target("POST", "/s", JSON), b"{}")
    assert await stream.read() == b"[END]"
    stream.release()
    await asyncio.sleep(0.2)
    assert (await post(client)).body == b"next"
    assert server.connections == 1


async def test_a_drained_stream_does_not_close_the_next_exchange_on_its_connection(start: Start) -> None:
    # The released stream's end arrives at once and its connection is pooled; the next request on it is
    # answered 0.8 s after it was sent (within its 1 s read timeout) but after the released stream's own
    # read-timeout window (1 s from its release) has ended: that window must not close it.
    async def handler(ex: Exchange) -> None:
        await ex.request()
        await ex.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n[END]\r\n")
        await asyncio.sleep(0.05)
        await ex.send(b"0\r\n\r\n")
        await ex.request()
        await asyncio.sleep(0.8)
        await ex.send(answer(b"slow but fine"))
        await ex.closed_by_client(5)

    server, client = await start(handler, timeouts=http.Timeouts(connect=2, read=1.0, total=5))
    stream = await client.open(client.target("POST", "/s", JSON), b"{}")
    assert await stream.read() == b"[END]"
    stream.release()
    await asyncio.sleep(0.4)
    assert (await post(client)).body == b"slow but fine"
    assert server.connections == 1


# ---- broken answers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (b"HTTQ/9 what\r\n\r\n", http.ProtocolError, "malformed response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", http.PayloadError, "before the body"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", http.PayloadError, "malformed"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000, http.PayloadError, "larger than"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
            http.PayloadError,
            "decode",
        ),
        (b"", http.Disconnected, "before answering"),
    ],
)
async def test_broken_answers_are_clear_errors(
    start: Start, data: bytes, error: type[Exception], match: str
) -> None:
    async def handler(ex: Exchange) -> None:
        await ex.request()
        await ex.send(data)
        ex.writer.close()

    _, client = await start(handler, max_body=4096)
    with pytest.raises(error, match=match):
        await post(client)
    await asyncio.sleep(0.05)
    assert client._count == 0


async def test_header_injection_is_refused(start: Start) -> None:
    _, client = await start(serve_each(answer(b"")))
    with pytest.raises(http.HttpClientError, match="line break"):
        await post(client, extra={"traceparent": "x\r\nEvil: 1"})


async def test_the_provider_names_broken_answers(start: Start) -> None:
    async def handler(ex: Exchange) -> None:
        await ex.request()
        await ex.send(b"nonsense\r\n\r\n")
        ex.writer.close()

    server = RawServer(handler)
    base = await server.start()
    provider = OpenAICompatProvider(OpenAIModel(name="m", api_base=base))
    request = ChatRequest(model="m", messages=[Message(role="user", content="hi")])
    try:
        with pytest.raises(UpstreamUnavailable, match="upstream 'm' sent an invalid HTTP answer"):
            await provider.complete(request)
    finally:
        await provider.aclose()
        await server.stop()
    refused = OpenAICompatProvider(OpenAIModel(name="m", api_base="http://127.0.0.1:9/v1"))
    with pytest.raises(UpstreamConnectionError, match=r"upstream 'm' is unreachable \(ConnectError"):
        await refused.complete(request)
    await refused.aclose()


async def test_a_server_that_closes_at_once_fails_fast(start: Start) -> None:
    async def hang_up(ex: Exchange) -> None:
        ex.writer.close()

    _, client = await start(hang_up)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises((http.Disconnected, http.ConnectError)):
        await post(client)
    assert loop.time() - started < 1  # not the 2 s read timeout
    assert client._count == 0
