"""Zero-copy relay of upstream chunks (ADR 0027): an upstream chunk is relayed in its own bytes only when
they say what re-encoding the parsed chunk would; anything else is re-encoded."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tollhouse.types import ChatChunk, ChunkChoice, Delta
from tollhouse.wire.openai import chat_chunk_event, chat_chunk_from_dict, chat_chunk_raw, chat_chunk_to_dict

PUBLIC = "gpt-public"


def upstream(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "upstream-id",
        "choices": [
            {"index": 0, "delta": {"content": 'say "hi"\n'}, "logprobs": None, "finish_reason": None}
        ],
    }
    d.update(over)
    return d


def relayed(d: dict[str, Any]) -> bytes | None:
    return chat_chunk_raw(d, orjson.dumps(d), PUBLIC)


@pytest.mark.parametrize(
    "d",
    [
        upstream(),
        upstream(model=PUBLIC),
        upstream(system_fingerprint="fp_1"),
        upstream(
            choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
        ),
        upstream(choices=[{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]),
        upstream(choices=[]),
    ],
)
def test_canonical_chunks_are_relayed_as_sent_and_say_what_re_encoding_says(d: dict[str, Any]) -> None:
    raw = relayed(d)
    assert raw is not None
    again = chat_chunk_to_dict(chat_chunk_from_dict(d, PUBLIC))
    got = orjson.loads(raw)
    assert got["model"] == PUBLIC
    # Same JSON, up to fields the upstream left out that re-encoding writes as null.
    assert {k: v for k, v in got.items() if k != "choices"} == {
        k: v for k, v in again.items() if k != "choices"
    }
    for mine, theirs in zip(got["choices"], again["choices"], strict=True):
        assert {k: v for k, v in theirs.items() if v is not None} == {
            k: v for k, v in mine.items() if v is not None
        }


def test_only_the_model_field_is_rewritten() -> None:
    d = upstream()
    d["choices"][0]["delta"]["content"] = '"model":"upstream-id" is my name'  # escaped inside a string
    raw = relayed(d)
    assert raw == orjson.dumps(d).replace(b'"model":"upstream-id"', b'"model":"gpt-public"', 1)
    assert orjson.loads(raw or b"")["choices"][0]["delta"]["content"] == '"model":"upstream-id" is my name'


@pytest.mark.parametrize(
    "d",
    [
        upstream(obfuscation="abc"),  # a field the gateway does not relay
        upstream(usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}),
        upstream(created="1700000000"),
        upstream(object="chat.completion"),
        upstream(
            choices=[{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c", "type": "function"}]}}]
        ),
        upstream(choices=[{"delta": {"content": "no index"}}]),
        upstream(choices=[{"index": 0, "delta": {"content": "x"}, "extra": 1}]),
        upstream(model=None),
    ],
)
def test_other_shapes_are_re_encoded(d: dict[str, Any]) -> None:
    assert relayed(d) is None


def test_upstream_spelling_the_gateway_cannot_splice_is_re_encoded() -> None:
    d = upstream()
    spaced = orjson.dumps(d).replace(b'"model":', b'"model": ')
    assert chat_chunk_raw(d, spaced, PUBLIC) is None
    assert chat_chunk_raw(d, spaced, "upstream-id") == spaced  # nothing to splice: relayed as sent
    assert chat_chunk_raw(d, orjson.dumps(d) + b"\n", PUBLIC) is None  # one SSE data line only


def test_event_uses_the_raw_bytes_until_a_stage_drops_them() -> None:
    chunk = ChatChunk("c", PUBLIC, [ChunkChoice(0, Delta(content="hi"))], created=1)
    chunk.raw = b'{"upstream":"bytes"}'
    assert chat_chunk_event(chunk) == b'data: {"upstream":"bytes"}\n\n'
    chunk.raw = None
    assert chat_chunk_event(chunk) == b"data: " + orjson.dumps(chat_chunk_to_dict(chunk)) + b"\n\n"
    assert ChatChunk("c", PUBLIC, [], created=1, raw=b"x") == ChatChunk("c", PUBLIC, [], created=1)
