"""A real server process: graceful SIGTERM drain and its cut-off, client disconnects cancelling the upstream
(streams and whole answers), bind safety."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.support.gateway_server import GatewayProcess, gateway_server
from tests.support.mock_upstream import admin, start_mock_upstream, stop

pytestmark = pytest.mark.slow

NO_EMBEDDED = {"chat": False, "embeddings": False}


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    proc, base = start_mock_upstream()
    try:
        yield base
    finally:
        stop(proc)


def test_sigterm_drains_in_flight_requests() -> None:
    config = {"embedded": NO_EMBEDDED, "models": [{"name": "slow", "provider": "mock", "latency_ms": 1500}]}
    with gateway_server(config) as gw:
        result: dict[str, object] = {}

        def call() -> None:
            r = httpx.post(
                gw.base_url + "/chat/completions",
                json={"model": "slow", "messages": [{"role": "user", "content": "hi"}]},
                timeout=30,
            )
            result["status"] = r.status_code
            result["body"] = r.json()

        t = threading.Thread(target=call)
        t.start()
        time.sleep(0.5)  # the request is in flight, waiting on the 1.5 s upstream
        code = gw.terminate(timeout=20)
        t.join(10)
        assert result.get("status") == 200, result
        # uvicorn re-raises SIGTERM after a clean shutdown, so the exit status is the signal's.
        assert code in (0, -15)
        assert "stopped" in gw.log()


def test_client_disconnect_cancels_upstream_stream(upstream: str) -> None:
    config = {
        "embedded": NO_EMBEDDED,
        "models": [{"name": "relay", "provider": "openai", "api_base": upstream}],
    }
    admin(upstream, "/__stats", "DELETE")
    with gateway_server(config) as gw:
        body = {
            "model": "relay",
            "stream": True,
            "messages": [{"role": "user", "content": "mock:stall_stream"}],
        }
        with httpx.stream("POST", gw.base_url + "/chat/completions", json=body, timeout=30) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data: "):
                    break  # got the first chunk; now hang up
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if admin(upstream, "/__stats").get("stream_disconnects", 0) >= 1:
                break
            time.sleep(0.1)
        assert admin(upstream, "/__stats").get("stream_disconnects", 0) >= 1
        # The access line says what the metrics and the ledger say: the client went away.
        line = _wait_for_access_line(gw, '"path":"/v1/chat/completions"')
        assert '"status":499' in line and '"http_status":200' in line, line


def test_client_disconnect_aborts_a_whole_answer_upstream(upstream: str) -> None:
    config = {
        "embedded": NO_EMBEDDED,
        "ledger": {"flush_interval_s": 0.05},
        "models": [{"name": "relay", "provider": "openai", "api_base": upstream}],
    }
    admin(upstream, "/__stats", "DELETE")
    with gateway_server(config) as gw:
        body = {"model": "relay", "messages": [{"role": "user", "content": "mock:slow:30000"}]}
        with pytest.raises(httpx.TimeoutException):
            httpx.post(gw.base_url + "/chat/completions", json=body, timeout=1.0)  # the client gives up
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not admin(upstream, "/__stats").get("request_disconnects"):
            time.sleep(0.1)
        assert admin(upstream, "/__stats").get("request_disconnects") == 1  # aborted, not left running
        line = _wait_for_access_line(gw, '"path":"/v1/chat/completions"')
        assert '"status":499' in line, line
        assert _ledger_statuses(gw) == [499]  # one record


def test_requests_cut_at_shutdown_get_the_error_envelope() -> None:
    config = {
        "embedded": NO_EMBEDDED,
        "server": {"graceful_shutdown_s": 1},
        "ledger": {"flush_interval_s": 0.05},
        "models": [
            {"name": "slow", "provider": "mock", "latency_ms": 60_000},
            {"name": "stalled", "provider": "mock", "faults": ["stall:1"], "reply": "one two three"},
        ],
    }
    with gateway_server(config) as gw:
        results: dict[str, httpx.Response] = {}

        def call(name: str, stream: bool) -> None:
            body = {"model": name, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
            results[name] = httpx.post(gw.base_url + "/chat/completions", json=body, timeout=30)

        threads = [threading.Thread(target=call, args=a) for a in (("slow", False), ("stalled", True))]
        for t in threads:
            t.start()
        time.sleep(1.0)  # both in flight
        gw.terminate(timeout=20)
        for t in threads:
            t.join(10)
        whole, stream = results["slow"], results["stalled"]
        assert whole.status_code == 503 and whole.headers["retry-after"] == "1"
        assert whole.json()["error"]["code"] == "server_shutting_down"
        assert stream.status_code == 200
        events = [line for line in stream.text.splitlines() if line.startswith("data: ")]
        assert '"content":"one"' in events[0]
        assert '"code":"server_shutting_down"' in events[-1]
        log = gw.log()
        assert "Traceback" not in log and "Exception in ASGI application" not in log
        assert _ledger_statuses(gw) == [503, 503]


def _wait_for_access_line(gw: GatewayProcess, marker: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        lines = [x for x in gw.log().splitlines() if '"msg":"request"' in x and marker in x]
        if lines or time.monotonic() > deadline:
            assert lines, gw.log()
            return lines[-1]
        time.sleep(0.05)


def _ledger_statuses(gw: GatewayProcess, timeout: float = 5.0) -> list[int]:
    """Statuses in the server's SQLite ledger (in its working directory), once records stop arriving."""
    db = gw.log_path.parent / "tollhouse.db"
    deadline = time.monotonic() + timeout
    found: list[int] = []
    while time.monotonic() < deadline:
        if db.exists():
            with contextlib.closing(sqlite3.connect(db)) as conn:
                try:
                    found = sorted(s for (s,) in conn.execute("SELECT status FROM ledger"))
                except sqlite3.OperationalError:  # the table is not there yet
                    found = []
            if found:
                time.sleep(0.3)  # a second record on its way
                with contextlib.closing(sqlite3.connect(db)) as conn:
                    return sorted(s for (s,) in conn.execute("SELECT status FROM ledger"))
        time.sleep(0.05)
    return found


def test_refuses_public_bind_without_auth() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tollhouse.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "refusing to serve on 0.0.0.0" in out.stderr


def test_bad_config_stops_startup_naming_the_field(tmp_path: object) -> None:
    import pathlib

    cfg = pathlib.Path(str(tmp_path)) / "bad.yaml"
    cfg.write_text("server:\n  port: seventy\n")
    out = subprocess.run(
        [sys.executable, "-m", "tollhouse.cli", "serve", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "server.port" in out.stderr and "'seventy'" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "tollhouse.cli", "check-config", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2


def test_body_limit_on_a_real_socket(upstream: str) -> None:
    config = {
        "embedded": NO_EMBEDDED,
        "server": {"max_body_bytes": 1000},
        "models": [{"name": "m", "provider": "mock"}],
    }
    with gateway_server(config) as gw:
        big = {"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]}
        r = httpx.post(gw.base_url + "/chat/completions", json=big, timeout=10)
        assert r.status_code == 413

        # chunked upload without Content-Length is cut off too
        def gen() -> Iterator[bytes]:
            yield b'{"model": "m", "messages": [{"role": "user", "content": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}]}'

        r = httpx.post(gw.base_url + "/chat/completions", content=gen(), timeout=10)
        assert r.status_code == 413


def test_several_workers_serve() -> None:
    config = {
        "embedded": NO_EMBEDDED,
        "server": {"workers": 2},
        "models": [{"name": "m", "provider": "mock"}],
    }
    with gateway_server(config) as gw:
        for _ in range(6):
            r = httpx.post(
                gw.base_url + "/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                timeout=10,
            )
            assert r.status_code == 200
        deadline = time.monotonic() + 15
        while gw.log().count('"msg":"ready"') < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gw.log().count('"msg":"ready"') == 2
