"""Cancellation as the ASGI server drives it: a client that disconnects cancels its request's work (whole
answers and streams waiting for their first token), a client that leaves a stream is a 499 in the access
line, the metrics and the ledger alike, a stalled stream ends at its deployment's ``total_s``, and a request
the server cuts at the end of its shutdown grace period is answered in the error envelope."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import Message
from tests.conftest import mock_settings
from tests.unit.test_gateway import make, req

from tollhouse.api.disconnect import unless_disconnected
from tollhouse.app import create_app
from tollhouse.operations import CHAT
from tollhouse.providers.mock import MockProvider
from tollhouse.runtime import Runtime
from tollhouse.types import Estimate, RequestContext, Reservation, Usage

PATH = "/v1/chat/completions"


class Exchange:
    """One request driven straight through the ASGI app: what it sent back, and its context."""

    def __init__(self, body: dict[str, Any], disconnect_after: float | None = None) -> None:
        self.raw = orjson.dumps(body)
        self.disconnect_after = disconnect_after
        self.sent: list[Message] = []
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": PATH,
            "raw_path": PATH.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(self.raw))],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        self._body_sent = False
        self._gone = asyncio.Event()

    async def receive(self) -> Message:
        if not self._body_sent:
            self._body_sent = True
            if self.disconnect_after is not None:
                asyncio.get_running_loop().call_later(self.disconnect_after, self._gone.set)
            return {"type": "http.request", "body": self.raw, "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self._gone.is_set():
            return  # as a server does once its client is gone
        self.sent.append(message)

    async def run(self, app: FastAPI) -> None:
        await app(self.scope, self.receive, self.send)

    @property
    def ctx(self) -> RequestContext:
        ctx = self.scope["state"]["ctx"]
        assert isinstance(ctx, RequestContext)
        return ctx

    @property
    def status(self) -> int:
        return int(next(m["status"] for m in self.sent if m["type"] == "http.response.start"))

    @property
    def headers(self) -> dict[bytes, bytes]:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        return dict(start["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


@asynccontextmanager
async def served(**models: dict[str, Any]) -> AsyncIterator[tuple[FastAPI, Runtime]]:
    app = create_app(mock_settings(**models))
    async with app.router.lifespan_context(app):
        yield app, app.state.runtime


def provider(runtime: Runtime, name: str) -> MockProvider:
    p = runtime.registry.get(name).provider
    assert isinstance(p, MockProvider)
    return p


def metric_statuses(runtime: Runtime, model: str) -> str:
    text = runtime.telemetry.metrics.render()[0].decode()
    return "\n".join(
        line for line in text.splitlines() if line.startswith("tollhouse_requests_total{") and model in line
    )


def access_statuses(caplog: pytest.LogCaptureFixture) -> list[tuple[int, int | None]]:
    return [
        (r.status, getattr(r, "http_status", None))  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "tollhouse.access"
    ]


def chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi there"}], **extra}


# ---- a client that disconnects before its answer ------------------------------------------------------


async def test_disconnect_cancels_the_work_settles_and_records_one_499() -> None:
    gw, mock, limiter, ledger = make(latency_ms=10_000)
    ctx = RequestContext(request_id="gone")
    ex = Exchange({}, disconnect_after=0.1)
    await ex.receive()  # the body was read; the client leaves 0.1 s later
    request = Request(ex.scope, ex.receive)
    t0 = time.perf_counter()
    assert await unless_disconnected(request, ctx, gw.handle(ctx, CHAT, req())) is None
    assert time.perf_counter() - t0 < 1.0
    assert mock.cancelled == 1  # the provider call was cancelled, not left running
    assert limiter.settled == [None]  # the reservation settled
    assert ledger.records == [ctx] and ctx.status == 499 and ctx.client_gone
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]  # nothing left pending


class SlowSettling:
    """A limiter whose settlement waits (a remote store), so a second cancellation can land in it."""

    async def admit(self, ctx: RequestContext, estimate: Estimate) -> Reservation:
        class Slow:
            async def settle(self, usage: Usage | None) -> None:
                await asyncio.sleep(10)

        return Slow()


async def test_request_cancelled_again_while_it_settles_is_still_recorded_once() -> None:
    gw, _, _, ledger = make(latency_ms=10_000)
    gw.limiter = SlowSettling()
    ctx = RequestContext(request_id="twice")
    task = asyncio.create_task(gw.handle(ctx, CHAT, req()))
    await asyncio.sleep(0.05)
    task.cancel()  # during the provider call
    await asyncio.sleep(0.05)
    task.cancel()  # during the settlement
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ledger.records == [ctx] and ctx.status == 499


async def test_work_that_ends_first_is_returned_and_not_cancelled() -> None:
    gw, *_ = make(latency_ms=20)
    ctx = RequestContext(request_id="stay")
    ex = Exchange({}, disconnect_after=5)
    await ex.receive()
    resp = await unless_disconnected(Request(ex.scope, ex.receive), ctx, gw.handle(ctx, CHAT, req()))
    assert resp is not None and ctx.status == 200 and not ctx.client_gone
    await asyncio.sleep(0.1)  # past the point where the client is watched: nothing fires late
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_client_that_leaves_a_whole_answer_is_499_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tollhouse.access")
    async with served(slow={"latency_ms": 10_000}) as (app, runtime):
        ex = Exchange(chat("slow"), disconnect_after=0.2)
        t0 = time.perf_counter()
        await ex.run(app)
        assert time.perf_counter() - t0 < 1.5  # not the 10 s the model would have taken
        assert provider(runtime, "slow").cancelled == 1
        assert ex.ctx.status == 499 and ex.ctx.recorded
        assert ex.sent == []  # nothing reached the client that left
        assert 'status="499"' in metric_statuses(runtime, "slow")
    assert access_statuses(caplog) == [(499, None)]


async def test_client_that_leaves_before_the_first_token_cancels_the_stream() -> None:
    async with served(slow={"latency_ms": 10_000}) as (app, runtime):
        ex = Exchange(chat("slow", stream=True), disconnect_after=0.2)
        t0 = time.perf_counter()
        await ex.run(app)
        assert time.perf_counter() - t0 < 1.5
        assert ex.ctx.status == 499 and ex.ctx.recorded
        assert 'status="499"' in metric_statuses(runtime, "slow")


async def test_client_that_leaves_a_stream_is_499_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tollhouse.access")
    words = " ".join(f"w{i}" for i in range(200))
    async with served(chatty={"reply": words, "chunk_ms": 20}) as (app, runtime):
        ex = Exchange(chat("chatty", stream=True), disconnect_after=0.3)
        await ex.run(app)
        assert ex.status == 200  # the headers went out before the client left
        assert ex.ctx.status == 499 and ex.ctx.client_gone
        assert provider(runtime, "chatty").cancelled == 1
        statuses = metric_statuses(runtime, "chatty")
        assert 'status="499"' in statuses and 'status="200"' not in statuses
    # The access line says what the ledger and the metrics say, and what the headers said.
    assert access_statuses(caplog) == [(499, 200)]


# ---- the gateway bounds every stream ---------------------------------------------------------------------


async def test_stalled_stream_ends_with_an_error_event_at_total_s() -> None:
    stalled = {"faults": ["stall:1"], "reply": "one two three", "timeouts": {"total_s": 0.5}}
    async with served(stalled=stalled) as (app, _):
        ex = Exchange(chat("stalled", stream=True))
        t0 = time.perf_counter()
        async with asyncio.timeout(5):  # without the gateway's bound the stream would hang for an hour
            await ex.run(app)
        elapsed = time.perf_counter() - t0
    assert 0.4 < elapsed < 2.0, elapsed
    events = [e for e in ex.body.split(b"\n\n") if e.startswith(b"data: ")]
    assert b'"content":"one"' in events[0]
    error = orjson.loads(events[-1].removeprefix(b"data: "))["error"]
    assert "total_s" in error["message"] and ex.ctx.status == 504


# ---- requests the server cuts at the end of its shutdown grace period -----------------------------------


async def test_cut_request_gets_a_503_envelope_with_retry_after() -> None:
    async with served(slow={"latency_ms": 10_000}) as (app, runtime):
        runtime.gateway.draining = True  # as the stop signal sets it
        ex = Exchange(chat("slow"))
        task = asyncio.create_task(ex.run(app))
        await asyncio.sleep(0.2)
        task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")  # what uvicorn does
        await task  # ends normally: nothing for the server to log
        assert ex.status == 503 and b"retry-after" in ex.headers
        error = orjson.loads(ex.body)["error"]
        assert error["code"] == "server_shutting_down" and error["request_id"] == ex.ctx.request_id
        assert ex.ctx.status == 503  # the ledger agrees
        assert 'status="503"' in metric_statuses(runtime, "slow")


async def test_cut_stream_ends_with_an_error_event() -> None:
    async with served(stalled={"faults": ["stall:1"], "reply": "one two three"}) as (app, runtime):
        runtime.gateway.draining = True
        ex = Exchange(chat("stalled", stream=True))
        task = asyncio.create_task(ex.run(app))
        await asyncio.sleep(0.3)
        task.cancel()
        await task
        assert ex.status == 200
        assert ex.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
        last = [e for e in ex.body.split(b"\n\n") if e.startswith(b"data: ")][-1]
        assert orjson.loads(last.removeprefix(b"data: "))["error"]["code"] == "server_shutting_down"
        assert ex.ctx.status == 503


# ---- the stream response sends inline and notices a client that leaves mid-stream ------------------------


class Gone(Exchange):
    """A server of ASGI spec 2.4: a send to a client that has left fails with ``OSError`` (and the
    client's disconnect is never read: only the failed send tells)."""

    def __init__(self, body: dict[str, Any], path: str, sends_before_leaving: int) -> None:
        super().__init__(body)
        self.scope["asgi"]["spec_version"] = "2.4"
        self.scope["path"] = path
        self.scope["raw_path"] = path.encode()
        self.sends_left = sends_before_leaving
        self.senders: set[asyncio.Task[Any] | None] = set()

    async def send(self, message: Message) -> None:
        self.senders.add(asyncio.current_task())
        if self.sends_left == 0:
            raise OSError("Broken pipe")
        self.sends_left -= 1
        self.sent.append(message)


@pytest.mark.parametrize("path", [PATH, "/v1/messages"])
async def test_failed_send_mid_stream_closes_the_upstream_and_records_499(path: str) -> None:
    words = " ".join(f"w{i}" for i in range(200))
    body = chat("chatty", stream=True, max_tokens=500)
    async with served(chatty={"reply": words, "chunk_ms": 5}) as (app, runtime):
        ex = Gone(body, path, sends_before_leaving=4)  # the headers, then three bodies
        t0 = time.perf_counter()
        await ex.run(app)
        assert time.perf_counter() - t0 < 0.5  # not the ~1 s the whole stream would take
        assert ex.status == 200 and len(ex.sent) == 4
        assert provider(runtime, "chatty").cancelled == 1  # the upstream stream was closed
        assert ex.ctx.status == 499 and ex.ctx.client_gone and ex.ctx.recorded
        statuses = metric_statuses(runtime, "chatty")
        assert 'status="499"' in statuses and 'status="200"' not in statuses


@pytest.mark.parametrize("path", [PATH, "/v1/messages"])
async def test_client_that_leaves_an_anthropic_or_openai_stream_cancels_it(path: str) -> None:
    words = " ".join(f"w{i}" for i in range(200))
    async with served(chatty={"reply": words, "chunk_ms": 20}) as (app, runtime):
        ex = Exchange(chat("chatty", stream=True, max_tokens=500), disconnect_after=0.3)
        ex.scope["path"], ex.scope["raw_path"] = path, path.encode()
        t0 = time.perf_counter()
        await ex.run(app)
        assert time.perf_counter() - t0 < 1.5  # not the ~4 s the whole stream would take
        assert ex.status == 200 and ex.body  # chunks went out before the client left
        assert provider(runtime, "chatty").cancelled == 1
        assert ex.ctx.status == 499 and ex.ctx.client_gone
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]  # nothing left pending


async def test_stream_is_sent_from_the_request_task_in_order() -> None:
    async with served(chatty={"reply": "one two three four", "chunk_ms": 0}) as (app, _):
        ex = Gone(chat("chatty", stream=True), PATH, sends_before_leaving=1000)
        ex.scope["asgi"]["spec_version"] = "2.3"  # uvicorn's: Starlette's response would open a task group
        await ex.run(app)
    assert ex.senders == {asyncio.current_task()}  # no task group, no task of its own
    assert ex.sent[-1]["more_body"] is False and all(m.get("more_body") for m in ex.sent[1:-1])
    events = [e for e in ex.body.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]" and events[-2].startswith(b": x-tollhouse-cost-usd=")
    text = "".join(
        c["delta"].get("content") or ""
        for e in events[:-2]
        for c in orjson.loads(e.removeprefix(b"data: "))["choices"]
    )
    assert text == "one two three four"
