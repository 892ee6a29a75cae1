"""The SSE response on a real socket (uvicorn on loopback, mock models): both official SDKs parse its
streams, and a client that hangs up mid-stream closes the upstream stream and is recorded 499."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
import uvicorn
from tests.conftest import mock_settings
from tests.support.mock_upstream import free_port

from tollhouse.app import create_app
from tollhouse.providers.mock import MockProvider

WORDS = " ".join(f"w{i}" for i in range(40))


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Any]]:
    app = create_app(
        mock_settings(chatty={"reply": WORDS, "chunk_ms": 1}, slow={"reply": WORDS * 5, "chunk_ms": 20})
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(15)


def test_openai_sdk_parses_the_stream(served: tuple[str, Any]) -> None:
    base, _ = served
    sdk = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
    stream = sdk.chat.completions.create(
        model="chatty",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == WORDS
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_anthropic_sdk_parses_the_stream(served: tuple[str, Any]) -> None:
    base, _ = served
    sdk = anthropic.Anthropic(base_url=base, api_key="unused", max_retries=0)
    with sdk.messages.stream(
        model="chatty", max_tokens=500, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == WORDS
    assert final.stop_reason is not None and final.usage.output_tokens > 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
        ("/v1/messages", {"max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}]}),
    ],
)
def test_hang_up_mid_stream_closes_the_upstream_and_is_499(
    served: tuple[str, Any], path: str, body: dict[str, Any]
) -> None:
    base, app = served
    provider = app.state.runtime.registry.get("slow").provider
    assert isinstance(provider, MockProvider)
    before = provider.cancelled
    with httpx.stream("POST", base + path, json={"model": "slow", "stream": True, **body}, timeout=30) as r:
        assert r.status_code == 200
        for n, _ in enumerate(r.iter_lines()):
            if n == 6:
                break  # hang up (undisturbed, this stream runs for ~4 s)
    deadline = time.monotonic() + 3  # noticed by the listener the response starts after 50 ms
    while provider.cancelled == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert provider.cancelled == before + 1
    text = app.state.runtime.telemetry.metrics.render()[0].decode()
    assert any(
        line.startswith("tollhouse_requests_total{") and '"slow"' in line and 'status="499"' in line
        for line in text.splitlines()
    )
