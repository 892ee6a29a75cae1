"""Per-chunk relay cost of streams (not a test), end to end through sockets against the kit's mock.

A closed loop of ``--conc`` streams with chunks 0 ms apart, run with ``--few`` and with ``--many`` chunks per
stream (the mock's chunk count set live); the gateway's CPU over each run ÷ streams served gives CPU per
stream, and the slope between the two is the CPU per extra chunk. Rounds alternate few / many; medians.
Then TTFB overhead: streams at ``--rate``/s with a 100 ms first chunk, gateway - direct, p50.

    BENCH_VENV=/path/.venv python3 bench/stream_relay.py                # gateway on CPU 1, harness on CPU 0
    python3 bench/stream_relay.py --rounds 5 --src /tmp/other/src      # another tree's code (A/B)
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from harness import GW_PORT, MOCK_PORT, Gateway, load, loadavg, mock_config, say, start_mock


def per_stream_cpu(gw: Gateway, chunks: int, conc: int, seconds: float, harness: str) -> tuple[float, float]:
    """(CPU ms per stream, streams/s) for one closed-loop run of streams with ``chunks`` chunks."""
    mock_config(delay_ms=0, chunk_ms=0, chunks=chunks)
    url = f"http://127.0.0.1:{GW_PORT}/v1/chat/completions"
    c0 = gw.group.cpu_s()
    r = load(url, gw.key, harness, conc=conc, duration_s=seconds, warmup_s=0, stream=True)
    c1 = gw.group.cpu_s()
    if r["errors"]:
        say("errors:", r["error_kinds"])
    return 1000 * (c1 - c0) / max(1, r["ok"]), r["achieved_rps"]


def ttfb(key: str, base: str, rate: int, harness: str) -> float:
    mock_config(delay_ms=100, chunk_ms=10, chunks=8)
    r = load(f"{base}/v1/chat/completions", key, harness, rate=rate, duration_s=8, warmup_s=2, stream=True)
    return float(r["ttfb_ms"]["P50"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpus", default="1", help="gateway CPUs")
    ap.add_argument("--harness-cpus", default="0", help="mock + load generator CPUs")
    ap.add_argument("--few", type=int, default=4)
    ap.add_argument("--many", type=int, default=64)
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=int, default=50, help="streams/s for the TTFB point")
    ap.add_argument("--src", type=Path, help="the src/ folder to run (default: this tree's)")
    a = ap.parse_args()
    mock = start_mock(a.harness_cpus)
    gw = None
    try:
        gw = Gateway(a.cpus, src=a.src)
        load(f"http://127.0.0.1:{GW_PORT}/v1/chat/completions", gw.key, a.harness_cpus, conc=8, duration_s=3)
        slopes, few, many = [], [], []
        for i in range(a.rounds):
            f, fr = per_stream_cpu(gw, a.few, a.conc, a.seconds, a.harness_cpus)
            m, mr = per_stream_cpu(gw, a.many, a.conc, a.seconds, a.harness_cpus)
            slope = 1000 * (m - f) / (a.many - a.few)  # µs per chunk
            few.append(f)
            many.append(m)
            slopes.append(slope)
            say(
                f"round {i + 1}: {a.few} chunks {f:.3f} ms/stream ({fr:.0f}/s), {a.many} chunks {m:.3f} "
                f"ms/stream ({mr:.0f}/s): {slope:.1f} us/chunk; load {loadavg()}"
            )
        over = []  # gateway - direct, seconds apart, per round
        for _ in range(a.rounds):
            d = ttfb("sk-bench", f"http://127.0.0.1:{MOCK_PORT}", a.rate, a.harness_cpus)
            over.append(ttfb(gw.key, f"http://127.0.0.1:{GW_PORT}", a.rate, a.harness_cpus) - d)
        out = {
            "us_per_chunk": round(statistics.median(slopes), 2),
            "us_per_chunk_rounds": [round(s, 2) for s in slopes],
            "ms_per_stream_few": round(statistics.median(few), 3),
            "ms_per_stream_many": round(statistics.median(many), 3),
            "ttfb_overhead_p50_ms": round(statistics.median(over), 3),
            "ttfb_overhead_rounds": [round(o, 3) for o in over],
            "loadavg": loadavg(),
        }
        print(json.dumps(out))
    finally:
        if gw is not None:
            gw.stop()
        mock.stop()


if __name__ == "__main__":
    main()
