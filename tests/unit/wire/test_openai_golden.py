"""Recorded wire bytes and cache keys: the OpenAI JSON of ``tests/support/openai_corpus.py`` must give the
same cache keys, the same upstream request bodies and the same client JSON as when ``openai_golden.json`` was
recorded (before content parts, tools and tool calls became typed). Cache keys that changed would empty
every cache on upgrade; relayed bytes that changed would be a behaviour change for clients and upstreams.

Replayed cache hits are compared as parsed JSON: their tool-call deltas now put ``index`` first, as
OpenAI's own streams do, where the recording had it last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.support.openai_corpus import CHUNKS, REQUESTS, RESPONSES

from tollhouse.api.openai.protocol import ChatCompletionRequest
from tollhouse.caching.entry import CachedAnswer, replay
from tollhouse.caching.keys import context_hash, exact_key
from tollhouse.wire import openai as wire

GOLDEN: dict[str, Any] = orjson.loads((Path(__file__).parent / "openai_golden.json").read_bytes())


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_request_cache_keys_and_upstream_bodies(name: str) -> None:
    req = ChatCompletionRequest.model_validate(REQUESTS[name]).to_internal()
    assert exact_key("key:k1", "m", req, None) == GOLDEN[f"req/{name}/exact"]
    assert context_hash(req, "v1") == GOLDEN[f"req/{name}/context"]
    assert _dumps(wire.chat_request_to_dict(req, "up", stream=False)) == GOLDEN[f"req/{name}/up"]
    assert _dumps(wire.chat_request_to_dict(req, "up", stream=True)) == GOLDEN[f"req/{name}/up_stream"]


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_responses_cache_entries_and_replays(name: str) -> None:
    resp = wire.chat_response_from_dict(RESPONSES[name], "pub")
    assert _dumps(wire.chat_response_to_dict(resp)) == GOLDEN[f"resp/{name}"]
    raw = CachedAnswer(resp, "dep", 0.5, 1.0).to_bytes()
    assert raw.decode() == GOLDEN[f"resp/{name}/entry"]
    back = CachedAnswer.from_bytes(raw, "pub").response
    assert _dumps(wire.chat_response_to_dict(back)) == GOLDEN[f"resp/{name}/entry_rt"]
    chunks = [wire.chat_chunk_to_dict(c) for c in replay(resp, True)]
    assert chunks == [orjson.loads(c) for c in GOLDEN[f"resp/{name}/replay"]]


@pytest.mark.parametrize("name", sorted(CHUNKS))
def test_stream_chunks(name: str) -> None:
    chunk = wire.chat_chunk_from_dict(CHUNKS[name], "pub")
    assert _dumps(wire.chat_chunk_to_dict(chunk)) == GOLDEN[f"chunk/{name}"]
