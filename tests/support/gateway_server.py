"""Run a real Tollhouse server process on loopback for integration and e2e tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from tests.support.mock_upstream import free_port


class GatewayProcess:
    def __init__(self, proc: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
        self.proc = proc
        self.base_url = base_url  # ends in /v1
        self.root = base_url.removesuffix("/v1")
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


@contextmanager
def gateway_server(
    config: dict[str, Any], env: dict[str, str] | None = None, ready_timeout: float = 60.0
) -> Iterator[GatewayProcess]:
    """Write ``config`` to a temp YAML, start ``tollhouse serve`` on a free port, wait for /health/live.
    The response cache is off unless ``config`` sets it: most tests count what reaches the upstream."""
    config = {"cache": {"mode": "off"}, **config}
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "tollhouse.yaml"
        cfg_path.write_text(yaml.safe_dump(config))
        log_path = Path(tmp) / "server.log"
        port = free_port()
        cmd = [sys.executable, "-m", "tollhouse.cli", "serve", "--config", str(cfg_path), "--port", str(port)]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLHOUSE_")}
        full_env.update(env or {})
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=full_env, cwd=tmp)
        gw = GatewayProcess(proc, f"http://127.0.0.1:{port}/v1", log_path)
        try:
            _wait_live(gw, ready_timeout)
            yield gw
        finally:
            gw.terminate()


def _wait_live(gw: GatewayProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gw.proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {gw.proc.returncode}:\n{gw.log()}")
        try:
            with urllib.request.urlopen(gw.root + "/health/live", timeout=1) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"gateway not live within {timeout} s:\n{gw.log()}")
