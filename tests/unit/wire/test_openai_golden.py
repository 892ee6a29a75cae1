"""Recorded wire bytes and cache keys: the OpenAI JSON of ``tests/support/openai_corpus.py`` must give the
same cache keys, the same upstream request bodies and the same client JSON as when ``openai_golden.json`` was
recorded (before content parts, tools and tool calls became typed). Cache keys that changed would empty
every cache on upgrade; relayed bytes that changed would be a behaviour change for clients and upstreams.

Replayed cache hits are compared as parsed JSON: their tool-call deltas now put ``index`` first, as
OpenAI's own streams do, where the recording had it last. Shapes OpenAI refuses (an image part without a
URL, an unknown tool choice or response format) left the corpus for ``REJECTED`` when the API began to
refuse them too; the reduced ``parts_odd`` was recorded with the code of the original recording.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from tests.support.openai_corpus import CHUNKS, REJECTED, REQUESTS, RESPONSES

from tollhouse.api.errors import validation_error
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


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_shapes_openai_refuses_are_refused_naming_the_field(name: str) -> None:
    body, param = REJECTED[name]
    with pytest.raises(ValidationError) as info:
        ChatCompletionRequest.model_validate(body)
    err = validation_error(info.value)
    assert (err.status, err.param) == (400, param)
    assert param in err.message
