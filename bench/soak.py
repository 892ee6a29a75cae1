"""Soak (not a test): a fixed arrival rate for many minutes against one gateway worker, the gateway's RSS,
CPU and the machine's load average after every minute, latency and errors per minute.

    BENCH_VENV=/path/.venv python3 bench/soak.py                       # 500 req/s for 10 minutes
    python3 bench/soak.py --rate 500 --minutes 10 --out /tmp/soak.jsonl

One JSON line per minute on stdout (and in ``--out``); a summary line last. The gateway is pinned to
``--cpus``, the mock and the load generator to ``--harness-cpus``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness import GW_PORT, Gateway, load, loadavg, say, start_mock


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpus", default="1")
    ap.add_argument("--harness-cpus", default="0")
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    mock = start_mock(a.harness_cpus)
    gw = None
    lines: list[dict[str, object]] = []
    try:
        gw = Gateway(a.cpus)
        url = f"http://127.0.0.1:{GW_PORT}/v1/chat/completions"
        lines.append({"minute": 0, "rss_mib": round(gw.group.rss_mib(), 1), "loadavg": loadavg()})
        for minute in range(1, a.minutes + 1):
            c0 = gw.group.cpu_s()
            r = load(url, gw.key, a.harness_cpus, rate=a.rate, duration_s=60, warmup_s=0)
            cpu = gw.group.cpu_s() - c0
            lines.append(
                {
                    "minute": minute,
                    "rss_mib": round(gw.group.rss_mib(), 1),
                    "ok": r["ok"],
                    "errors": r["errors"],
                    "dropped": r["dropped"],
                    "rps": round(r["achieved_rps"], 1),
                    "p50_ms": r["latency_ms"]["P50"],
                    "p99_ms": r["latency_ms"]["P99"],
                    "error_kinds": r["error_kinds"],
                    "cpu_ms_per_req": round(1000 * cpu / r["ok"], 3) if r["ok"] else None,
                    "loadavg": loadavg(),
                }
            )
            say(json.dumps(lines[-1]))
    finally:
        if gw is not None:
            gw.stop()
        mock.stop()
    rss = [float(str(x["rss_mib"])) for x in lines]
    summary = {
        "rss_first_mib": rss[1] if len(rss) > 1 else None,
        "rss_last_mib": rss[-1],
        "rss_max_mib": max(rss),
    }
    text = "\n".join(json.dumps(x) for x in [*lines, summary])
    print(text)
    if a.out:
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
