"""Servers a test owns and stops: a throwaway ``redis-server`` on a free port, and a TCP proxy in front of
the shared PostgreSQL that a test takes down and brings back (``initdb`` refuses to run as root, so a
database outage is the proxy refusing connections and dropping the open ones — what a client sees when the
server stops). Never the shared servers themselves."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from tests.support.mock_upstream import free_port
from tests.support.stores import PG_DSN
from tests.support.tcp_proxy import TcpProxy


class ThrowawayRedis:
    """A ``redis-server`` of our own, without persistence, that can be restarted (losing everything)."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        cmd += ["--appendonly", "no", "--dir", str(self.workdir)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = ThrowawayRedis(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class ThreadedProxy:
    """A ``TcpProxy`` served by an event loop of its own (in a thread), so a test can take it down and up
    while a gateway process — or the test's own loop — talks through it."""

    def __init__(self, target_port: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="test-proxy", daemon=True)
        self._thread.start()
        self._proxy = TcpProxy(target_port)

    def _run(self, coro: Any) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    @property
    def port(self) -> int:
        return self._proxy.port

    def up(self) -> None:
        self._run(self._proxy.up())

    def down(self) -> None:
        self._run(self._proxy.down())

    def close(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def pg_proxy() -> Iterator[ThreadedProxy]:
    """A proxy to the shared PostgreSQL, up; ``proxied(dsn)`` routes a DSN through it."""
    proxy = ThreadedProxy(5432)
    proxy.up()
    try:
        yield proxy
    finally:
        proxy.close()


def proxied(dsn: str, proxy: ThreadedProxy) -> str:
    host = PG_DSN.split("@", 1)[1].split("/", 1)[0]
    return dsn.replace(host, f"127.0.0.1:{proxy.port}")
