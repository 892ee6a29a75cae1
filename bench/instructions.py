"""Instructions the gateway process executes per request, per stream and per streamed chunk, counted by
valgrind's callgrind (not a test; a benchmark that does not depend on how busy the machine is).

`tollhouse serve` (the issued-key configuration of ``harness.Gateway``) runs under callgrind with
instrumentation off; for each phase the kit's load generator drives it with 2 connections, and only the
phase itself is counted (``callgrind_control -i on`` / ``off``, then a dump): non-streamed requests, streams
of 4 chunks, streams of 64 chunks. Per chunk = the slope between the two stream phases. The counts are
user-space instructions: system calls (a socket write per chunk) are not in them, so they rank changes to
the gateway's own code, and time (``bench/run.sh``, ``bench/stream_relay.py``) says what a client sees.

    BENCH_VENV=/path/.venv python3 bench/instructions.py                  # this tree's src/
    python3 bench/instructions.py --src /tmp/other/src                    # another tree (A/B)
    python3 bench/instructions.py --floor                                 # bench/relay_floor.py: a bare relay
    python3 bench/instructions.py --plain --env TOLLHOUSE_GUARDRAILS__ENABLED=false   # one feature off

Needs valgrind (Debian's ``valgrind`` package); the gateway is ~50x slower under it, so phases are short.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import harness
from harness import GW_PORT, Floor, Gateway, load, mock_config, say, start_mock


def _counted(out_prefix: str) -> type[harness.Group]:
    class Counted(harness.Group):
        def __init__(self, cmd: str, cpus: str, env: dict[str, str] | None = None, log: Path | None = None):
            if " serve " in cmd or "relay_floor.py" in cmd:
                env = dict(env or os.environ, PYTHONHASHSEED="0")
                cmd = (
                    f"valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file={out_prefix}.%p {cmd}"
                )
            super().__init__(cmd, cpus, env, log)

    return Counted


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], capture_output=True, check=False)


def _total(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, help="the src/ folder to run (default: this tree's)")
    ap.add_argument("--seconds", type=float, default=20, help="length of each counted phase")
    ap.add_argument("--cpus", default="1", help="gateway CPUs")
    ap.add_argument("--harness-cpus", default="0", help="mock + load generator CPUs")
    ap.add_argument("--floor", action="store_true", help="count bench/relay_floor.py (a bare relay) instead")
    ap.add_argument("--plain", action="store_true", help="count non-streamed requests only (one phase)")
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the gateway, e.g. TOLLHOUSE_GUARDRAILS__ENABLED=false (repeatable)",
    )
    a = ap.parse_args()
    for item in a.env:
        name, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--env wants NAME=VALUE, got {item!r}")
        os.environ[name] = value
    work = Path(tempfile.mkdtemp(prefix="tollhouse-callgrind."))
    harness.Group = _counted(str(work / "callgrind.out"))  # type: ignore[misc]
    mock = start_mock(a.harness_cpus)
    gw = None
    url = f"http://127.0.0.1:{GW_PORT}/v1/chat/completions"
    served: dict[str, int] = {}
    try:
        gw = Floor(a.cpus, src=a.src) if a.floor else Gateway(a.cpus, src=a.src)
        phases = (
            (("plain", 8, False),)
            if a.floor or a.plain
            else (("plain", 8, False), ("few", 4, True), ("many", 64, True))
        )
        for n, (name, chunks, stream) in enumerate(phases):
            mock_config(delay_ms=0, chunk_ms=0, chunks=chunks)
            load(url, gw.key, a.harness_cpus, conc=2, duration_s=3, warmup_s=0, stream=stream)  # warm
            _control("-z")
            _control("-i", "on")
            r: dict[str, Any] = load(
                url, gw.key, a.harness_cpus, conc=2, duration_s=a.seconds, warmup_s=0, stream=stream
            )
            _control("-i", "off")
            _control("-d", name)
            if r["errors"]:
                raise RuntimeError(f"{name}: {r['errors']} errors: {r.get('error_kinds')}")
            served[name] = int(r["ok"])
            say(f"phase {n + 1}/{len(phases)} {name}: {served[name]} served")
    finally:
        if gw is not None:
            gw.stop()
        mock.stop()
    dumps = sorted(work.glob("callgrind.out.*.[0-9]*"), key=lambda p: int(p.suffix[1:]))
    per = {name: _total(path) / served[name] for name, path in zip(served, dumps, strict=True)}
    if len(per) == 1:
        what = "bare relay" if a.floor else "non-streamed"
        print(f"instructions per request ({what}): {per['plain'] / 1e3:,.0f}k")
        print(f"dumps in {work}")
        return
    slope = (per["many"] - per["few"]) / (64 - 4)
    print(f"instructions per request (non-streamed): {per['plain'] / 1e3:,.0f}k")
    print(f"instructions per stream: 4 chunks {per['few'] / 1e3:,.0f}k, 64 chunks {per['many'] / 1e3:,.0f}k")
    print(f"instructions per chunk (slope): {slope / 1e3:,.1f}k")
    print(f"dumps in {work}")


if __name__ == "__main__":
    main()
