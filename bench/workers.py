"""``--workers 2`` against one worker (not a test): closed-loop throughput of relayed requests.

On a two-core machine the load generator and the mock must share the cores with two workers, so each
configuration is run the same way: the gateway (one or two workers) and the harness (mock + load
generator) both allowed on ``--cpus`` (default ``0,1``), rounds alternating one and two workers. Reported
per configuration: req/s, the gateway's CPU ms per request (the per-request cost: flat means the workers do
not interfere), and the cores the gateway and the harness each used (CPU seconds ÷ wall seconds), so the
share the harness took from the workers is visible. Medians over rounds.

    BENCH_VENV=/path/.venv python3 bench/workers.py
    python3 bench/workers.py --rounds 3 --conc 128
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from harness import GW_PORT, Gateway, load, loadavg, say, start_mock


def run(workers: int, a: argparse.Namespace) -> dict[str, float]:
    gw = Gateway(a.cpus, workers=workers)
    try:
        url = f"http://127.0.0.1:{GW_PORT}/v1/chat/completions"
        load(url, gw.key, a.cpus, conc=a.conc, duration_s=3, warmup_s=0, procs=2)
        c0, t0, h0 = gw.group.cpu_s(), time.monotonic(), os.times()
        r = load(url, gw.key, a.cpus, conc=a.conc, duration_s=a.seconds, warmup_s=0, procs=2)
        wall = time.monotonic() - t0
        cpu = gw.group.cpu_s() - c0
        h1 = os.times()
        harness = (h1.children_user - h0.children_user) + (h1.children_system - h0.children_system)
        return {
            "rps": r["achieved_rps"],
            "errors": r["errors"],
            "cpu_ms_per_req": 1000 * cpu / max(1, r["ok"]),
            "gateway_cores": cpu / wall,
            "loadgen_cores": harness / wall,
        }
    finally:
        gw.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpus", default="0,1", help="CPUs for the gateway and the harness alike")
    ap.add_argument("--conc", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    mock = start_mock(a.cpus)
    got: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    try:
        for i in range(a.rounds):
            for w in (1, 2):
                got[w].append(run(w, a))
                say(f"round {i + 1}, {w} worker(s): {json.dumps(got[w][-1])} load {loadavg()}")
    finally:
        mock.stop()
    med = {w: {k: round(statistics.median(x[k] for x in rs), 3) for k in rs[0]} for w, rs in got.items()}
    ratios = [two["rps"] / one["rps"] for one, two in zip(got[1], got[2], strict=True)]
    print(
        json.dumps(
            {
                "one": med[1],
                "two": med[2],
                "ratio": round(statistics.median(ratios), 3),
                "ratio_rounds": [round(x, 3) for x in ratios],
                "loadavg": loadavg(),
            }
        )
    )


if __name__ == "__main__":
    main()
