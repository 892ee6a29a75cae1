"""Summarise an interleaved before/after benchmark (bench/compare.sh): medians over rounds per point."""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from typing import Any


def load(path: str) -> dict[str, dict[str, list[float]]]:
    """point → metric → one value per round (overhead is gateway - direct within the same round)."""
    rows: dict[tuple[str, int], dict[str, Any]] = defaultdict(dict)
    round_of: dict[str, int] = defaultdict(int)
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    for rec in records:
        key = (rec["scenario"], rec["target"])
        round_of[f"{key}"] += 1
        rows[(rec["scenario"], round_of[f"{key}"])][rec["target"]] = rec
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (point, _), pair in sorted(rows.items()):
        gw, direct = pair.get("gateway"), pair.get("direct")
        if gw is None or direct is None:
            continue
        g, d = gw["res"], direct["res"]
        m = out[point]
        lat = "ttfb_ms" if g.get("ttfb_ms") else "latency_ms"
        m["gw p50"].append(g[lat]["P50"])
        m["gw p99"].append(g[lat]["P99"])
        m["overhead p50"].append(g[lat]["P50"] - d[lat]["P50"])
        m["overhead p99"].append(g[lat]["P99"] - d[lat]["P99"])
        m["req/s"].append(g["achieved_rps"])
        m["errors"].append(g["errors"] + g["dropped"])
        served = gw.get("upstream_served") or 0
        if gw.get("gw_cpu_s") and served:
            m["CPU ms/req"].append(1000 * gw["gw_cpu_s"] / served)
    return out


def main() -> None:
    ref, before_path, after_path = sys.argv[1:4]
    before, after = load(before_path), load(after_path)
    print(f"# Before ({ref}) vs after (working tree), medians over rounds\n")
    print("| point | metric | before | after | after / before |")
    print("|---|---|---|---|---|")
    for point in sorted(set(before) | set(after)):
        for metric in ("gw p50", "gw p99", "overhead p50", "overhead p99", "req/s", "CPU ms/req", "errors"):
            b, a = before.get(point, {}).get(metric), after.get(point, {}).get(metric)
            if not b or not a:
                continue
            mb, ma = statistics.median(b), statistics.median(a)
            ratio = f"{ma / mb:.2f}" if mb else "—"
            print(f"| {point} | {metric} | {mb:.2f} ({len(b)}) | {ma:.2f} ({len(a)}) | {ratio} |")


if __name__ == "__main__":
    main()
