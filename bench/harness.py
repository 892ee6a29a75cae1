"""Shared plumbing for the end-to-end scripts beside ``bench/run.sh`` (idle RSS, stream relay, workers, soak):
the kit's Go mock upstream and load generator, a gateway started with ``tollhouse serve`` on the benchmark
configuration (``BENCH_KEYS=1``: an issued key with limits and budgets, the ledger on), and what /proc says
about a process tree (CPU seconds, RSS). Standard library only; every process is started in its own process
group and stopped by that group's id.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("BENCH_BIN", "/tmp/bench-bin"))
KIT = Path(os.environ.get("BENCH_KIT", "/work/shared/bench"))
VENV = Path(os.environ.get("BENCH_VENV", ROOT / ".venv"))
MOCK_PORT = int(os.environ.get("BENCH_MOCK_PORT", "18080"))
GW_PORT = int(os.environ.get("BENCH_GW_PORT", "8080"))
CLK = os.sysconf("SC_CLK_TCK")


def build_kit() -> None:
    """Build the kit's Go binaries once (standard library only: no module downloads)."""
    for sub, name in (("mock", "mockupstream"), ("loadgen", "loadgen")):
        if not (BIN / name).exists():
            BIN.mkdir(parents=True, exist_ok=True)
            env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off")
            subprocess.run(["go", "build", "-o", str(BIN / name), "."], cwd=KIT / sub, env=env, check=True)


class Group:
    """A process started in its own session (so its own process group), pinned with taskset."""

    def __init__(self, cmd: str, cpus: str, env: dict[str, str] | None = None, log: Path | None = None):
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115  # closed with the process
        self.p = subprocess.Popen(
            ["bash", "-c", f"exec taskset -c {cpus} {cmd}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def pids(self) -> list[int]:
        return tree(self.p.pid) if self.p.poll() is None else []

    def cpu_s(self) -> float:
        return sum(cpu_s(p) for p in self.pids())

    def rss_mib(self) -> float:
        return sum(rss_kib(p) for p in self.pids()) / 1024

    def stop(self) -> None:
        if self.p.poll() is not None:
            return
        os.killpg(self.p.pid, signal.SIGTERM)
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(5)


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                s = Path(f"/proc/{d}/stat").read_text()
                kids.setdefault(int(s[s.rindex(")") + 2 :].split()[1]), []).append(int(d))
            except (OSError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_s(pid: int) -> float:
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    f = s[s.rindex(")") + 2 :].split()
    return (int(f[11]) + int(f[12])) / CLK


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def http(url: str, body: dict[str, Any] | None = None, key: str = "sk-bench") -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=5) as r:
        return int(r.status), r.read()


def mock_config(**kw: int) -> None:
    http(f"http://127.0.0.1:{MOCK_PORT}/__mock/config?" + "&".join(f"{k}={v}" for k, v in kw.items()))


def start_mock(cpus: str, chunks: int = 8, log: Path | None = None) -> Group:
    build_kit()
    cmd = f"{BIN / 'mockupstream'} -addr 127.0.0.1:{MOCK_PORT} -chunks {chunks}"
    g = Group(cmd, cpus, dict(os.environ, GOMAXPROCS="1"), log)
    for _ in range(50):
        try:
            mock_config(delay_ms=0, chunk_ms=0)
            return g
        except OSError:
            time.sleep(0.1)
    g.stop()
    raise RuntimeError("mock upstream did not start")


class Gateway:
    """``tollhouse serve`` on the benchmark configuration, state in a scratch folder. ``keys``: the
    issued-key configuration (``bench/tollhouse.bench-keys.yaml``) with a key created for the run."""

    def __init__(self, cpus: str, *, keys: bool = True, workers: int = 1, src: Path | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="tollhouse-bench-gw."))
        self.src = src or ROOT / "src"
        self.env = dict(os.environ, BENCH_KEY="sk-bench", PYTHONPATH=str(self.src))
        self.env.pop("DATABASE_URL", None)
        self.key = "sk-bench"
        if keys:
            text = (ROOT / "bench/tollhouse.bench-keys.yaml").read_text().replace("@STATE@", str(self.dir))
        else:
            text = (ROOT / "bench/tollhouse.bench.yaml").read_text()
        self.config = self.dir / "tollhouse.yaml"
        self.config.write_text(text.replace("127.0.0.1:18080", f"127.0.0.1:{MOCK_PORT}"))
        if keys:
            self.key = self._create_key()
        self.env["TOLLHOUSE_CONFIG"] = str(self.config)
        cmd = (
            f"{VENV / 'bin/python'} -m tollhouse.cli serve --config {shlex.quote(str(self.config))} "
            f"--port {GW_PORT}" + (f" --workers {workers}" if workers > 1 else "")
        )
        self._launch(cmd, cpus)

    def _launch(self, cmd: str, cpus: str) -> None:
        """Start ``cmd`` (its output in ``gateway.log``) and wait until it relays a request."""
        self.group = Group(cmd, cpus, self.env, self.dir / "gateway.log")
        try:
            self._wait_ready()
        except BaseException:
            self.group.stop()
            raise

    def _create_key(self) -> str:
        out = subprocess.run(
            [
                *(str(VENV / "bin/python"), "-m", "tollhouse.cli", "keys", "create", "--config"),
                *(str(self.config), "--json", "--name", "bench", "--team", "bench", "--rpm", "10000000"),
                *("--tpm", "1000000000", "--daily-usd", "1000000", "--monthly-usd", "10000000"),
            ],
            env=self.env,
            cwd=self.dir,
            capture_output=True,
            check=True,
        )
        d = json.loads(out.stdout)
        return str(d.get("secret") or d.get("key"))

    def _wait_ready(self) -> None:
        body = {"model": "bench-model", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(240):
            if self.group.p.poll() is not None:
                raise RuntimeError(f"gateway exited; log in {self.dir / 'gateway.log'}")
            try:
                if http(f"http://127.0.0.1:{GW_PORT}/v1/chat/completions", body, self.key)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"gateway not ready; log in {self.dir / 'gateway.log'}")

    def stop(self) -> None:
        self.group.stop()


class Floor(Gateway):
    """``bench/relay_floor.py``: a bare ASGI relay on the same server settings, no Tollhouse features."""

    def __init__(self, cpus: str, *, src: Path | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="tollhouse-bench-floor."))
        self.env = dict(os.environ, PYTHONPATH=str(src or ROOT / "src"))
        self.key = "sk-bench"
        cmd = (
            f"{VENV / 'bin/python'} {ROOT / 'bench/relay_floor.py'} --port {GW_PORT} "
            f"--upstream http://127.0.0.1:{MOCK_PORT}/v1"
        )
        self._launch(cmd, cpus)


def load(
    url: str,
    key: str,
    cpus: str,
    *,
    rate: float = 0,
    conc: int = 64,
    duration_s: float = 8,
    warmup_s: float = 2,
    stream: bool = False,
    procs: int = 1,
) -> dict[str, Any]:
    """One loadgen run (its JSON result); ``rate`` > 0: open model, else ``conc`` connections looping."""
    args = [str(BIN / "loadgen"), "-url", url, "-model", "bench-model", "-key", key]
    args += ["-duration", f"{duration_s}s", "-warmup", f"{warmup_s}s", "-timeout", "10s"]
    args += ["-rate", str(rate)] if rate > 0 else ["-c", str(conc)]
    if stream:
        args.append("-stream")
    env = dict(os.environ, GOMAXPROCS=str(procs))
    out = subprocess.run(["taskset", "-c", cpus, *args], env=env, capture_output=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return result


def say(*parts: object) -> None:
    print(*parts, flush=True, file=sys.stderr)
