"""Anthropic translation overhead (not a test), in process, no network: what the /v1/messages ingress and the
anthropic provider add over the OpenAI path, per request and per streamed chunk.

Per request: the Anthropic body parsed and validated (pydantic) and converted to a ``ChatRequest``, and the
answer rendered as a ``message`` object, vs. the OpenAI ingress's parse + render of the same conversation.
Provider side: ``ChatRequest`` → Anthropic's body and Anthropic's answer → ``ChatResponse``, vs. the OpenAI
provider's pair. Per chunk: ``EventWriter.feed`` + SSE framing (ingress) and ``ChunkReader.feed`` (provider)
vs. OpenAI's chunk rendering and parsing. Medians over interleaved rounds.

    .venv/bin/python bench/anthropic_translation.py [--calls 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

import orjson

from tollhouse.api.anthropic.protocol import MessagesRequest
from tollhouse.api.openai.protocol import ChatCompletionRequest
from tollhouse.types import ChatChunk, ChatResponse, Choice, ChunkChoice, Delta, Message, ToolCall, Usage
from tollhouse.wire import anthropic as wa
from tollhouse.wire import openai as wo
from tollhouse.wire.anthropic_stream import ChunkReader, EventWriter

TOOL = {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {}}}
ANTHROPIC_BODY = orjson.dumps(
    {
        "model": "m",
        "max_tokens": 256,
        "system": "You are a helpful assistant.",
        "tools": [TOOL],
        "messages": [
            {"role": "user", "content": "What is the weather in Paris today? Answer briefly."},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "21 C, sunny"}],
            },
        ],
    }
)
OPENAI_BODY = orjson.dumps(
    {
        "model": "m",
        "max_tokens": 256,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
        ],
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the weather in Paris today? Answer briefly."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "21 C, sunny"},
        ],
    }
)
ANSWER = ChatResponse(
    "chatcmpl-1",
    "m",
    [Choice(0, Message("assistant", "It is 21 C and sunny in Paris today."), "stop")],
    Usage(60, 12, 0),
)
UPSTREAM_ANSWER = wa.response_to_anthropic(ANSWER)
UPSTREAM_OPENAI = wo.chat_response_to_dict(ANSWER)
CHUNK = ChatChunk("chatcmpl-1", "m", [ChunkChoice(0, Delta(content=" sunny"))])
EVENT = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " sunny"}}
OPENAI_CHUNK = wo.chat_chunk_to_dict(CHUNK)
_ = ToolCall


def anthropic_ingress() -> None:
    req = MessagesRequest.model_validate_json(ANTHROPIC_BODY).to_internal()
    orjson.dumps(wa.response_to_anthropic(ANSWER))
    assert req.messages


def openai_ingress() -> None:
    req = ChatCompletionRequest.model_validate_json(OPENAI_BODY).to_internal()
    orjson.dumps(wo.chat_response_to_dict(ANSWER))
    assert req.messages


REQ = MessagesRequest.model_validate_json(ANTHROPIC_BODY).to_internal()


def anthropic_provider() -> None:
    orjson.dumps(wa.request_to_anthropic(REQ, "claude", 1024, stream=False))
    wa.response_from_anthropic(UPSTREAM_ANSWER, "m")


def openai_provider() -> None:
    orjson.dumps(wo.chat_request_to_dict(REQ, "gpt", stream=False))
    wo.chat_response_from_dict(UPSTREAM_OPENAI, "m")


WRITER = EventWriter("m")
WRITER.feed(CHUNK)
READER = ChunkReader("m")
READER.feed("message_start", {"message": {"id": "msg_1", "usage": {"input_tokens": 5}}})


def anthropic_chunk_out() -> None:
    for name, data in WRITER.feed(CHUNK):
        b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def openai_chunk_out() -> None:
    b"data: " + orjson.dumps(wo.chat_chunk_to_dict(CHUNK)) + b"\n\n"


def anthropic_chunk_in() -> None:
    READER.feed("content_block_delta", EVENT)


def openai_chunk_in() -> None:
    wo.chat_chunk_from_dict(OPENAI_CHUNK, "m")


def per_call_us(fn: Callable[[], None], calls: int) -> float:
    gc.disable()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    elapsed = time.perf_counter() - t0
    gc.enable()
    return elapsed / calls * 1e6


PAIRS: list[tuple[str, Callable[[], None], Callable[[], None]]] = [
    ("ingress, per request (parse + render)", anthropic_ingress, openai_ingress),
    ("provider, per request (body out + answer in)", anthropic_provider, openai_provider),
    ("ingress, per streamed chunk (render)", anthropic_chunk_out, openai_chunk_out),
    ("provider, per streamed chunk (parse)", anthropic_chunk_in, openai_chunk_in),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in PAIRS}
    for _ in range(args.rounds):
        for name, anthropic, openai in PAIRS:
            results[name].append((per_call_us(anthropic, args.calls), per_call_us(openai, args.calls)))
    print("| path | Anthropic µs | OpenAI µs | difference |")
    print("|---|---|---|---|")
    for name, rows in results.items():
        a = statistics.median(r[0] for r in rows)
        o = statistics.median(r[1] for r in rows)
        print(f"| {name} | {a:.1f} | {o:.1f} | {a - o:+.1f} µs ({a / o:.2f}x) |")


if __name__ == "__main__":
    main()
