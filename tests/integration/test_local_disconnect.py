"""A client that hangs up stops local generation, mid-stream or waiting for a whole answer: proven on a real
socket with the real model."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from tests.support.mock_upstream import free_port

from tollhouse.app import create_app
from tollhouse.providers.llamacpp import LlamaCppProvider
from tollhouse.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, object]]:
    app = create_app(Settings.model_validate({"embedded": {"chat": True, "embeddings": False}}))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}/v1", app
    finally:
        server.should_exit = True
        thread.join(15)


def test_disconnect_stops_local_generation(served: tuple[str, object]) -> None:
    base, app = served
    provider = app.state.runtime.registry.get("local").provider  # type: ignore[attr-defined]
    assert isinstance(provider, LlamaCppProvider)
    body = {
        "model": "local",
        "stream": True,
        "max_tokens": 400,
        "temperature": 0.8,
        "seed": 7,
        "messages": [{"role": "user", "content": "Write a very long story about a dragon and a knight."}],
    }
    chunks = 0
    with httpx.stream("POST", base + "/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                chunks += 1
                if chunks == 3:
                    break  # hang up after a few tokens (undisturbed, this request runs to 400)
    deadline = time.monotonic() + 10
    while provider.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert provider.in_flight == 0
    assert provider.last_generation_tokens < 60, provider.last_generation_tokens


def test_client_that_gives_up_on_a_whole_answer_frees_the_model(served: tuple[str, object]) -> None:
    base, app = served
    provider = app.state.runtime.registry.get("local").provider  # type: ignore[attr-defined]
    assert isinstance(provider, LlamaCppProvider)
    body = {
        "model": "local",
        "max_tokens": 1000,  # undisturbed, ~17 s of generation on the reference machine
        "temperature": 0.8,
        "seed": 7,
        "messages": [{"role": "user", "content": "Write a very long story about a dragon and a knight."}],
    }
    before = provider.total_generated_tokens
    t0 = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        httpx.post(base + "/chat/completions", json=body, timeout=1.0)  # the client gives up after 1 s
    deadline = time.monotonic() + 5
    while provider.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert provider.in_flight == 0
    assert time.monotonic() - t0 < 3.0
    assert provider.total_generated_tokens - before < 200  # stopped within a moment of the hang-up
    # The next caller does not wait behind the abandoned generation.
    short = {"model": "local", "max_tokens": 5, "messages": [{"role": "user", "content": "Say hi."}]}
    t1 = time.monotonic()
    assert httpx.post(base + "/chat/completions", json=short, timeout=30).status_code == 200
    assert time.monotonic() - t1 < 5.0
