"""Idle RSS of one gateway worker (not a test): ``tollhouse serve`` on the benchmark configuration
(embedded models off; ``--admin``: the admin-key config, default the issued-key one with the ledger on),
warmed up with a few seconds of relayed requests against the kit's mock, then left idle; VmRSS from
/proc/PID/status. Repeated ``--rounds`` times (a fresh process each), median.

    BENCH_VENV=/path/.venv python3 bench/idle_rss.py
    python3 bench/idle_rss.py --src /tmp/other/src        # another tree's code (A/B)
    python3 bench/idle_rss.py --modules                   # also list the heaviest modules loaded
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

from harness import GW_PORT, VENV, Gateway, load, say, start_mock

MODULES = """
import sys, tollhouse.app
print(" ".join(sorted({m.split(".")[0] for m in sys.modules})))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpus", default="1")
    ap.add_argument("--harness-cpus", default="0")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--admin", action="store_true", help="the admin-key configuration (no ledger)")
    ap.add_argument("--src", type=Path, help="the src/ folder to run (default: this tree's)")
    ap.add_argument("--modules", action="store_true", help="list the top-level packages the app imports")
    a = ap.parse_args()
    mock = start_mock(a.harness_cpus)
    rss: list[float] = []
    try:
        for i in range(a.rounds):
            gw = Gateway(a.cpus, keys=not a.admin, src=a.src)
            try:
                started = gw.group.rss_mib()
                url = f"http://127.0.0.1:{GW_PORT}/v1/chat/completions"
                load(url, gw.key, a.harness_cpus, conc=8, duration_s=3, warmup_s=0)
                time.sleep(3)  # idle: the ledger flushes, the loop settles
                rss.append(gw.group.rss_mib())
                say(f"round {i + 1}: {started:.1f} MiB after start-up, {rss[-1]:.1f} MiB idle after warm-up")
                if a.modules and i == 0:
                    mods = subprocess.run(
                        [str(VENV / "bin/python"), "-c", MODULES], env=gw.env, capture_output=True, text=True
                    )
                    say("imported:", mods.stdout.strip())
            finally:
                gw.stop()
    finally:
        mock.stop()
    print(
        json.dumps({"idle_rss_mib": round(statistics.median(rss), 1), "rounds": [round(r, 1) for r in rss]})
    )


if __name__ == "__main__":
    main()
