"""The OpenAI routes end to end in process (mock provider): shapes, streams, every error status."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient
from tests.conftest import assert_openai_shape

CHAT = "/v1/chat/completions"


def chat_body(model: str = "mock", **kw: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hello there"}], **kw}


def sse_events(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.split("\n\n") if line.startswith("data: ")]


def test_chat_json_matches_openai_schema(client: TestClient) -> None:
    r = client.post(CHAT, json=chat_body())
    assert r.status_code == 200
    body = r.json()
    assert_openai_shape("CreateChatCompletionResponse", body)
    assert body["model"] == "mock"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert (
        body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    assert float(r.headers["x-tollhouse-overhead-ms"]) >= 0


def test_alias_keeps_the_requested_name(client: TestClient) -> None:
    body = client.post(CHAT, json=chat_body("mock-alias")).json()
    assert body["model"] == "mock-alias"


def test_stream_is_sse_of_chunks_with_done(client: TestClient) -> None:
    r = client.post(CHAT, json=chat_body("fixed", stream=True))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-accel-buffering"] == "no"
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    for c in chunks:
        assert_openai_shape("CreateChatCompletionStreamResponse", c)
        assert c["object"] == "chat.completion.chunk"
        assert "usage" not in c  # the client did not ask for it
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.split() == ["one", "two", "three", "four", "five", "six"]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop"
    assert finishes.count("stop") == 1


def test_stream_usage_chunk_when_asked(client: TestClient) -> None:
    r = client.post(CHAT, json=chat_body("fixed", stream=True, stream_options={"include_usage": True}))
    chunks = [orjson.loads(e) for e in sse_events(r.text)[:-1]]
    last = chunks[-1]
    assert last["choices"] == []
    assert last["usage"]["completion_tokens"] == 6


def test_max_tokens_truncates_with_length(client: TestClient) -> None:
    body = client.post(CHAT, json=chat_body("fixed", max_tokens=2)).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "mock"}, "messages"),
        ({"model": "mock", "messages": []}, "messages"),
        ({"model": "mock", "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({**chat_body(), "temperature": 7}, "temperature"),
        ({**chat_body(), "max_tokens": 0}, "max_tokens"),
        ({**chat_body(), "n": "many"}, "n"),
    ],
)
def test_bad_fields_are_named(client: TestClient, payload: dict[str, object], param: str) -> None:
    r = client.post(CHAT, json=payload)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert param.split(".")[-1] in err["message"]
    assert_openai_shape("ErrorResponse", r.json())


def test_invalid_json_is_400(client: TestClient) -> None:
    r = client.post(CHAT, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["error"]["message"]


def test_max_tokens_above_model_limit(client: TestClient) -> None:
    r = client.post(CHAT, json=chat_body(max_tokens=100_000))
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "max_tokens"
    assert "256" in r.json()["error"]["message"]


def test_unknown_model_is_404(client: TestClient) -> None:
    r = client.post(CHAT, json=chat_body("nope"))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"
    assert r.json()["error"]["param"] == "model"


def test_unknown_fields_are_accepted(client: TestClient) -> None:
    r = client.post(CHAT, json=chat_body(some_future_param={"x": 1}))
    assert r.status_code == 200


def test_body_too_large_is_413(client: TestClient) -> None:
    big = "x" * (5 * 1024 * 1024)
    r = client.post(CHAT, json=chat_body(messages=[{"role": "user", "content": big}]))
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [
        ("limited", 429, "upstream_rate_limited"),
        ("down", 503, "upstream_unavailable"),
        ("broken", 502, "upstream_unavailable"),
        ("timeout", 504, "upstream_timeout"),
    ],
)
def test_upstream_failures_map_to_status(client: TestClient, model: str, status: int, code: str) -> None:
    r = client.post(CHAT, json=chat_body(model))
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert "Traceback" not in r.text
    if model == "limited":
        assert r.headers["retry-after"] == "7"


def test_stream_failure_before_first_chunk_is_an_http_error(client: TestClient) -> None:
    r = client.post(CHAT, json=chat_body("limited", stream=True))
    assert r.status_code == 429
    assert r.headers["content-type"].startswith("application/json")


def test_request_id_is_honoured_and_generated(client: TestClient) -> None:
    r = client.post(CHAT, json=chat_body(), headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = client.post(CHAT, json=chat_body("nope"))
    rid = r.headers["x-request-id"]
    assert len(rid) == 32
    assert r.json()["error"]["request_id"] == rid


def test_unknown_path_uses_the_envelope(client: TestClient) -> None:
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found_error"


def test_models_list(client: TestClient) -> None:
    r = client.get("/v1/models")
    body = r.json()
    assert_openai_shape("ListModelsResponse", body)
    ids = {m["id"] for m in body["data"]}
    assert {"mock", "mock-alias", "fixed"} <= ids
    assert client.get("/v1/models/mock").json()["id"] == "mock"
    assert client.get("/v1/models/nope").status_code == 404


def test_completions(client: TestClient) -> None:
    r = client.post("/v1/completions", json={"model": "fixed", "prompt": "say", "max_tokens": 3})
    body = r.json()
    assert_openai_shape("CreateCompletionResponse", body)
    assert body["choices"][0]["text"].split() == ["one", "two", "three"]
    assert body["choices"][0]["finish_reason"] == "length"
    r = client.post("/v1/completions", json={"model": "fixed", "prompt": "say", "stream": True})
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    text = "".join(orjson.loads(e)["choices"][0]["text"] for e in events[:-1] if orjson.loads(e)["choices"])
    assert text.split() == ["one", "two", "three", "four", "five", "six"]


def test_completions_reject_prompt_lists(client: TestClient) -> None:
    r = client.post("/v1/completions", json={"model": "fixed", "prompt": ["a", "b"]})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "prompt"


def test_embeddings(client: TestClient) -> None:
    r = client.post("/v1/embeddings", json={"model": "mock", "input": ["a b", "c"]})
    body = r.json()
    assert_openai_shape("CreateEmbeddingResponse", body)
    assert [d["index"] for d in body["data"]] == [0, 1]
    r = client.post("/v1/embeddings", json={"model": "mock", "input": "a", "encoding_format": "base64"})
    assert isinstance(r.json()["data"][0]["embedding"], str)


def test_health(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
    r = client.get("/health/ready")
    assert r.status_code == 200
    assert r.json()["checks"]["mock"]["status"] == "ok"


def test_openapi_docs_show_typed_bodies(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/chat/completions"]["post"]
    assert "requestBody" in op
    assert "ChatCompletionRequest" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 200
