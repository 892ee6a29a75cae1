"""A client that hangs up mid-stream stops local generation: proven on a real socket with the real model."""

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
