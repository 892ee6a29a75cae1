"""A real OpenAI-compatible HTTP upstream for integration tests, run as its own process (aiohttp.web).

Run ``python tests/support/mock_upstream.py --port N`` (prints ``READY <base_url>``), or in a test
``proc, base_url = start_mock_upstream()`` … ``stop(proc)``. Scenarios and introspection: see MockUpstream.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from email.utils import formatdate
from pathlib import Path
from typing import Any

from aiohttp import web

SCENARIO_HEADER = "x-mock-scenario"
RECORDED_HEADERS = (
    "authorization",
    "content-type",
    "accept",
    "user-agent",
    "x-request-id",
    "traceparent",
    "tracestate",
    SCENARIO_HEADER,
)
_SCENARIO_RE = re.compile(
    r"^(ok|tool_call|context|filter|stall_stream|error_in_stream|early_error_in_stream|drop_stream|invalid_json|reset"
    r"|status:\d{3}(:retry(_ms|_date)?=\d+(\.\d+)?)?|slow:\d+|slow_stream:\d+|slow_first_token:\d+)$"
)
_TOKEN_RE = re.compile(r"\s*\S+")
# Scenario ``tool_call``: the call the model makes.
TOOL_CALL_ID = "call_mock_1"
TOOL_ARGUMENTS = '{"city": "Paris", "unit": "celsius"}'
_FOREVER_S = 3600.0

CONTEXT_ERROR = {
    "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in "
    "9001 tokens. Please reduce the length of the messages.",
    "type": "invalid_request_error",
    "param": "messages",
    "code": "context_length_exceeded",
}
FILTER_ERROR = {
    "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management "
    "policy. Please modify your prompt and retry.",
    "type": None,
    "param": "prompt",
    "code": "content_filter",
    "status": 400,
}
STREAM_ERROR = {"message": "The server had an error while processing your request.", "type": "server_error"}


class MockUpstream:
    """The server and its state (recorded requests, counters). One instance per process.

    A request's scenario comes from the ``x-mock-scenario`` header, else from the last user message / prompt /
    first input when that text is a scenario (optionally written ``mock:<scenario>``). Anything else is "ok":
    ``echo: <text>``, where max_tokens counts words and ``stop`` cuts, as in MockProvider. Scenarios:
    ok | status:<code>[:retry=<s>|:retry_ms=<ms>|:retry_date=<s>] | context | filter | slow:<ms> (delay
    before headers) | slow_stream:<ms> (delay between chunks) | stall_stream (2 chunks, then hangs) |
    error_in_stream (200, then a data: {"error": …} event) | drop_stream (2 chunks, then the connection is
    closed without [DONE]) | invalid_json | reset (connection aborted before any response) |
    early_error_in_stream (200, the role chunk, then an error event: no content yet) | slow_first_token:<ms>
    (200 at once, then a delay before the first event).
    Introspection: GET/DELETE /__requests (method, path, some headers, JSON body of each request);
    GET/DELETE /__stats (``stream_disconnects``: streams whose client
    left before the end; ``request_disconnects``, ``requests``, ``streams_started``/``_completed``).
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.stats: Counter[str] = Counter()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/v1/models", self.models)
        for path in ("/__requests", "/__stats"):
            app.router.add_get(path, self.introspect)
            app.router.add_delete(path, self.introspect)
        return app

    # ---- OpenAI endpoints ---------------------------------------------------------------------------

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        messages = body.get("messages") or []
        last_user = next((_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
        prompt_tokens = sum(len(_text(m).split()) for m in messages)
        return await self._serve(request, body, "chat", last_user, prompt_tokens)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        prompt = body.get("prompt") or ""
        prompt = prompt if isinstance(prompt, str) else str(prompt[0] if prompt else "")
        return await self._serve(request, body, "text", prompt, len(prompt.split()))

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        inputs = body.get("input") or []
        inputs = [inputs] if isinstance(inputs, str) else inputs
        texts = [x if isinstance(x, str) else " ".join(map(str, x)) for x in inputs]
        scenario = self._scenario(request, texts[0] if texts else "")
        early = await self._early(request, scenario, stream=False)
        if early is not None:
            return early
        dim = int(body.get("dimensions") or 8)
        data = [
            {"object": "embedding", "index": i, "embedding": _vector(t, dim)} for i, t in enumerate(texts)
        ]
        words = sum(len(t.split()) for t in texts)
        usage = {"prompt_tokens": words, "total_tokens": words}
        return web.json_response({"object": "list", "data": data, "model": body.get("model"), "usage": usage})

    async def models(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        model = {"id": "mock-upstream", "object": "model", "created": 0, "owned_by": "tollhouse-tests"}
        return web.json_response({"object": "list", "data": [model]})

    # ---- introspection ------------------------------------------------------------------------------

    async def introspect(self, request: web.Request) -> web.StreamResponse:
        store: list[dict[str, Any]] | Counter[str] = (
            self.requests if request.path == "/__requests" else self.stats
        )
        if request.method == "DELETE":
            store.clear()
            return web.json_response({"cleared": True})
        return web.json_response(store if isinstance(store, list) else dict(store))

    # ---- behaviour ----------------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {h: request.headers[h] for h in RECORDED_HEADERS if h in request.headers}
        self.requests.append(
            {"method": request.method, "path": request.path, "headers": headers, "json": body}
        )
        self.stats["requests"] += 1
        return body if isinstance(body, dict) else {}

    @staticmethod
    def _scenario(request: web.Request, text: str) -> str:
        header = request.headers.get(SCENARIO_HEADER)
        if header:
            return header.strip()
        candidate = text.strip().removeprefix("mock:")
        return candidate if _SCENARIO_RE.match(candidate) else "ok"

    async def _early(self, request: web.Request, scenario: str, stream: bool) -> web.StreamResponse | None:
        """Scenarios that act before any 200 is sent; None means "go on and answer"."""
        if scenario.startswith("slow:"):
            await self._wait(int(scenario.split(":")[1]) / 1000, "request_disconnects")
        elif scenario.startswith("status:"):
            return _status_response(request, scenario)
        elif scenario == "context":
            return web.json_response({"error": CONTEXT_ERROR}, status=400)
        elif scenario == "filter":
            return web.json_response({"error": FILTER_ERROR}, status=400)
        elif scenario == "reset":
            if request.transport is not None:
                request.transport.abort()  # RST instead of an answer
            return web.Response()
        elif scenario == "invalid_json" and not stream:
            return web.Response(
                body=b'{"id": "chatcmpl-broken", "choices": [', content_type="application/json"
            )
        return None

    async def _serve(
        self, request: web.Request, body: dict[str, Any], kind: str, text: str, prompt_tokens: int
    ) -> web.StreamResponse:
        scenario = self._scenario(request, text)
        early = await self._early(request, scenario, stream=bool(body.get("stream")))
        if early is not None:
            return early
        messages = body.get("messages") or [{}]
        if scenario == "tool_call" and kind == "chat" and messages[-1].get("role") != "tool":
            return await self._tool_call(request, body, prompt_tokens)
        tokens, finish = _reply(f"echo: {text}", body.get("max_tokens"), body.get("stop"))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(tokens),
            "total_tokens": prompt_tokens + len(tokens),
        }
        model = body.get("model") or "mock-upstream"
        if body.get("stream"):
            wants_usage = (body.get("stream_options") or {}).get("include_usage")
            return await self._stream(
                request, scenario, _events(kind, model, tokens, finish, wants_usage and usage)
            )
        if scenario == "stall_stream":
            await self._wait(_FOREVER_S, "request_disconnects")
        if scenario == "error_in_stream":
            return web.json_response({"error": STREAM_ERROR})
        if scenario == "drop_stream":
            _drop(request)
            return web.Response()
        common = {"id": f"mock-{time.time_ns()}", "created": int(time.time()), "model": model, "usage": usage}
        content = "".join(tokens)
        if kind == "text":
            choice: dict[str, Any] = {"index": 0, "text": content, "logprobs": None, "finish_reason": finish}
            return web.json_response({**common, "object": "text_completion", "choices": [choice]})
        message = {"role": "assistant", "content": content, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        return web.json_response({**common, "object": "chat.completion", "choices": [choice]})

    async def _tool_call(
        self, request: web.Request, body: dict[str, Any], prompt_tokens: int
    ) -> web.StreamResponse:
        """Call the first declared function with ``TOOL_ARGUMENTS``, as OpenAI does (streamed: the name
        first, then the arguments in two pieces). Once the tool has answered, the reply is text again."""
        tools = body.get("tools") or [{}]
        name = (tools[0].get("function") or {}).get("name") or "tool"
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 7, "total_tokens": prompt_tokens + 7}
        head = {"id": f"mock-{time.time_ns()}", "created": int(time.time()), "model": body.get("model")}
        call = {
            "id": TOOL_CALL_ID,
            "type": "function",
            "function": {"name": name, "arguments": TOOL_ARGUMENTS},
        }
        if not body.get("stream"):
            message = {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}
            return web.json_response(
                {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
        half = len(TOOL_ARGUMENTS) // 2
        first = {
            "index": 0,
            "id": TOOL_CALL_ID,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        deltas: list[dict[str, Any]] = [
            {"role": "assistant", "content": None, "tool_calls": [first], "refusal": None},
            {"tool_calls": [{"index": 0, "function": {"arguments": TOOL_ARGUMENTS[:half]}}]},
            {"tool_calls": [{"index": 0, "function": {"arguments": TOOL_ARGUMENTS[half:]}}]},
        ]
        choices = [{"index": 0, "delta": d, "logprobs": None, "finish_reason": None} for d in deltas]
        choices.append({"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"})
        chunks = [{**head, "object": "chat.completion.chunk", "choices": [c]} for c in choices]
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        return await self._stream(request, "ok", [json.dumps(c).encode() for c in chunks])

    async def _stream(self, request: web.Request, scenario: str, events: list[bytes]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        self.stats["streams_started"] += 1
        gap = int(scenario.split(":")[1]) / 1000 if scenario.startswith("slow_stream:") else 0.0
        try:
            if scenario == "invalid_json":
                events = [b"{not json"]
            for i, event in enumerate(events):
                if i == 2 and scenario in ("stall_stream", "drop_stream", "error_in_stream"):
                    break
                if i == 1 and scenario == "early_error_in_stream":
                    break
                if i == 0 and scenario.startswith("slow_first_token:"):
                    await asyncio.sleep(int(scenario.split(":")[1]) / 1000)
                if i and gap:
                    await asyncio.sleep(gap)
                await resp.write(b"data: " + event + b"\n\n")
            if scenario == "stall_stream":
                await self._wait(_FOREVER_S, None)
            if scenario == "drop_stream":
                self.stats["streams_dropped"] += 1
                _drop(request)
                return resp
            if scenario in ("error_in_stream", "early_error_in_stream"):
                await resp.write(b"data: " + json.dumps({"error": STREAM_ERROR}).encode() + b"\n\n")
            else:
                await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            self.stats["streams_completed"] += 1
        except (asyncio.CancelledError, ConnectionResetError):
            self.stats["stream_disconnects"] += 1
            raise
        return resp

    async def _wait(self, seconds: float, counter: str | None) -> None:
        """Sleep, counting the client leaving meanwhile (the handler is cancelled on disconnect)."""
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            if counter:
                self.stats[counter] += 1
            raise


# ---- payloads ---------------------------------------------------------------------------------------


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return content if isinstance(content, str) else ""


def _reply(text: str, max_tokens: Any, stop: Any) -> tuple[list[str], str]:
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    cuts = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    if cuts:
        text = text[: min(cuts)]
    tokens = _TOKEN_RE.findall(text)
    if isinstance(max_tokens, int) and len(tokens) > max_tokens:
        return tokens[:max_tokens], "length"
    return tokens, "stop"


def _events(
    kind: str, model: str, tokens: list[str], finish: str, usage: dict[str, int] | None
) -> list[bytes]:
    """The SSE data payloads of an ok stream, in OpenAI's shapes (usage chunk last, with no choices)."""
    cid, created = f"mock-{time.time_ns()}", int(time.time())
    choices: list[dict[str, Any]]
    if kind == "chat":
        obj = "chat.completion.chunk"
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        deltas += [{"content": t} for t in tokens]
        choices = [{"index": 0, "delta": d, "logprobs": None, "finish_reason": None} for d in deltas]
        choices.append({"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish})
    else:
        obj = "text_completion"
        choices = [{"index": 0, "text": t, "logprobs": None, "finish_reason": None} for t in tokens]
        choices.append({"index": 0, "text": "", "logprobs": None, "finish_reason": finish})
    head: dict[str, Any] = {"id": cid, "object": obj, "created": created, "model": model}
    chunks = [{**head, "choices": [c]} for c in choices]
    if usage:
        chunks.append({**head, "choices": [], "usage": usage})
    return [json.dumps(c).encode() for c in chunks]


def _status_response(request: web.Request, scenario: str) -> web.Response:
    parts = scenario.split(":")
    status = int(parts[1])
    headers: dict[str, str] = {}
    if len(parts) > 2:
        name, _, value = parts[2].partition("=")
        if name == "retry":
            headers["Retry-After"] = value
        elif name == "retry_ms":
            headers["retry-after-ms"] = value
        else:
            headers["Retry-After"] = formatdate(time.time() + float(value), usegmt=True)
    message = f"mock upstream: simulated HTTP {status}"
    if status == 401:
        # Like OpenAI, echo the offending key, so tests can prove the gateway never relays it.
        message = f"Incorrect API key provided: {request.headers.get('authorization', '')}."
    code = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(status)
    error = {"message": message, "type": "mock_error", "param": None, "code": code}
    return web.json_response({"error": error}, status=status, headers=headers)


def _drop(request: web.Request) -> None:
    # close() (not abort()) flushes what was written, then ends the connection mid-body.
    if request.transport is not None:
        request.transport.close()


def _vector(text: str, dim: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [digest[i % len(digest)] / 255 - 0.5 for i in range(dim)]
    norm = sum(v * v for v in raw) ** 0.5 or 1.0
    return [v / norm for v in raw]


# ---- process helpers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_mock_upstream(timeout: float = 15.0) -> tuple[subprocess.Popen[str], str]:
    """Spawn the server on a free port; return the process and its base URL (``…/v1``) once it listens."""
    return start_process([sys.executable, str(Path(__file__).resolve()), "--port", str(free_port())], timeout)


def start_process(cmd: list[str], timeout: float = 15.0) -> tuple[subprocess.Popen[str], str]:
    """Spawn a server process that prints ``READY <base_url>`` once it listens; return it and the URL."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            stop(proc)
            raise RuntimeError(f"mock upstream exited early with status {proc.returncode}")
        if line.startswith("READY "):
            return proc, line.split()[1]
    stop(proc)
    raise RuntimeError(f"mock upstream did not start within {timeout} s")


def stop(proc: subprocess.Popen[str]) -> None:
    """Terminate the server (SIGTERM, then SIGKILL after 5 s) and close its pipe."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def admin(base_url: str, path: str, method: str = "GET") -> Any:
    """Blocking call to an introspection endpoint (``/__requests``, ``/__stats``); run it off the loop."""
    root = base_url.removesuffix("/v1")
    req = urllib.request.Request(root + path, method=method)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


async def _main(host: str, port: int) -> None:
    # handler_cancellation: a client that disconnects cancels its handler, which is what /__stats counts.
    runner = web.AppRunner(MockUpstream().app(), handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"READY http://{host}:{bound}/v1", flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible mock upstream for Tollhouse tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on READY).")
    args = parser.parse_args()
    asyncio.run(_main(args.host, args.port))


if __name__ == "__main__":
    main()
