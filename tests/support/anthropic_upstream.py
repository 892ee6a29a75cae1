"""A real loopback HTTP fake of Anthropic's Messages API (aiohttp.web), run as its own process.

``python tests/support/anthropic_upstream.py --port N`` prints ``READY <base_url>``; in a test,
``proc, base = start_anthropic_upstream()`` … ``stop(proc)``. It speaks Anthropic's JSON and named SSE
events. The last user text picks a scenario: ``tool`` (call the first tool with ``TOOL_INPUT``),
``status:<code>`` (Anthropic's error envelope, ``retry-after: 2`` on 429), ``context`` (its
prompt-too-long 400), ``error_in_stream`` (an ``error`` event after the first text delta), ``stop:<word>``
(stops at a stop sequence); anything else echoes ``echo: <text>``, one word per text delta. Usage:
``input_tokens`` = words of the request + 1, cache reads ``CACHE_READ``. ``POST
/v1/messages/count_tokens`` answers words + 1. ``GET/DELETE /__requests`` lists the requests received
(path, headers, JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.mock_upstream import free_port, start_process, stop

TOOL_ID = "toolu_01FakeToolUseId"
TOOL_INPUT = {"city": "Paris", "unit": "celsius"}
CACHE_READ = 3
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}
_ERROR_TYPES |= {500: "api_error", 529: "overloaded_error", 404: "not_found_error"}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")


class FakeAnthropic:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/__requests", self.list_requests)
        app.router.add_delete("/__requests", self.clear_requests)
        return app

    async def count_tokens(self, request: web.Request) -> web.Response:
        """``input_tokens``: the words of the messages and the system prompt, plus one."""
        body = await request.json()
        self.requests.append({"path": request.path, "headers": dict(request.headers), "json": body})
        if "max_tokens" in body or "stream" in body:
            return _error(400, "count_tokens takes no max_tokens or stream")
        words = sum(len(_text(m.get("content", "")).split()) for m in body.get("messages") or [])
        words += len(_text(body.get("system") or "").split())
        return web.json_response({"input_tokens": words + 1})

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"data": [], "has_more": False})

    async def list_requests(self, request: web.Request) -> web.Response:
        return web.json_response(self.requests)

    async def clear_requests(self, request: web.Request) -> web.Response:
        self.requests.clear()
        return web.json_response({})

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append({"path": request.path, "headers": headers, "json": body})
        if headers.get("x-api-key") != "sk-ant-test" or "anthropic-version" not in headers:
            return _error(401, "invalid x-api-key")
        if not isinstance(body.get("max_tokens"), int):
            return _error(400, "max_tokens: Field required")
        turns = body.get("messages") or []
        last = turns[-1] if turns else {}
        text = _text(last.get("content", "")) if last.get("role") == "user" else ""
        if text == "context":
            return _error(400, "prompt is too long: 250000 tokens > 200000 maximum")
        if text.startswith("status:"):
            return _error(int(text.split(":")[1]), "scripted failure")
        words = sum(len(_text(m.get("content", "")).split()) for m in turns) + 1
        usage_in = {
            "input_tokens": words,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": CACHE_READ,
        }
        blocks: list[dict[str, Any]]
        tool_results = [
            b for b in last.get("content", []) if isinstance(b, dict) and b.get("type") == "tool_result"
        ]
        if text == "tool" and body.get("tools") and not tool_results:
            name = body["tools"][0]["name"]
            blocks, reason, seq = (
                [{"type": "tool_use", "id": TOOL_ID, "name": name, "input": TOOL_INPUT}],
                "tool_use",
                None,
            )
        else:
            reply = "echo: " + (text or "tool done")
            reason, seq = "end_turn", None
            if text.startswith("stop:"):
                word = text.split(":", 1)[1]
                reply, reason, seq = "before", "stop_sequence", word
            cut = reply.split()[: body["max_tokens"]]
            if len(cut) < len(reply.split()):
                reason = "max_tokens"
            blocks = [{"type": "text", "text": " ".join(cut)}]
        out_tokens = sum(len(b.get("text", "").split()) for b in blocks) or 5
        msg = {
            "id": "msg_01FakeMessageId",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": blocks,
            "stop_reason": reason,
            "stop_sequence": seq,
            "usage": {**usage_in, "output_tokens": out_tokens},
        }
        if not body.get("stream"):
            return web.json_response(msg)
        return await self._stream(request, msg, text == "error_in_stream")

    async def _stream(self, request: web.Request, msg: dict[str, Any], fail: bool) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def send(kind: str, data: dict[str, Any]) -> None:
            await resp.write(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())

        start = {**msg, "content": [], "stop_reason": None, "stop_sequence": None}
        start["usage"] = {**msg["usage"], "output_tokens": 1}
        await send("message_start", {"type": "message_start", "message": start})
        for i, block in enumerate(msg["content"]):
            if block["type"] == "text":
                await send(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
                if i == 0:
                    await send("ping", {"type": "ping"})
                for j, word in enumerate(block["text"].split()):
                    piece = word if j == 0 else " " + word
                    await send(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "text_delta", "text": piece},
                        },
                    )
                    if fail:
                        await send(
                            "error",
                            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                        )
                        return resp
            else:
                await send(
                    "content_block_start",
                    {"type": "content_block_start", "index": i, "content_block": {**block, "input": {}}},
                )
                raw = json.dumps(block["input"])
                for piece in (raw[: len(raw) // 2], raw[len(raw) // 2 :]):
                    await send(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "input_json_delta", "partial_json": piece},
                        },
                    )
            await send("content_block_stop", {"type": "content_block_stop", "index": i})
        delta = {"stop_reason": msg["stop_reason"], "stop_sequence": msg["stop_sequence"]}
        await send(
            "message_delta",
            {
                "type": "message_delta",
                "delta": delta,
                "usage": {"output_tokens": msg["usage"]["output_tokens"]},
            },
        )
        await send("message_stop", {"type": "message_stop"})
        return resp


def _error(status: int, message: str) -> web.Response:
    body = {"type": "error", "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message}}
    headers = {"retry-after": "2"} if status == 429 else None
    return web.json_response(body, status=status, headers=headers)


def start_anthropic_upstream() -> tuple[subprocess.Popen[str], str]:
    return start_process([sys.executable, str(Path(__file__).resolve()), "--port", str(free_port())])


__all__ = ["CACHE_READ", "TOOL_ID", "TOOL_INPUT", "start_anthropic_upstream", "stop"]


async def _main(port: int) -> None:
    runner = web.AppRunner(FakeAnthropic().app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"READY http://127.0.0.1:{runner.addresses[0][1]}/v1", flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Fake of Anthropic's Messages API for Tollhouse tests.")
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(_main(parser.parse_args().port))
