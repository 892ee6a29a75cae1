"""Markdown report of one ``make loadtest`` run from locust's CSV files (``<out>/locust_stats.csv``)."""

from __future__ import annotations

import argparse
import csv
import platform
import subprocess
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--time", required=True)
    p.add_argument("--mock-ms", type=float, required=True)
    args = p.parse_args()
    with (args.out / "locust_stats.csv").open() as f:
        rows = list(csv.DictReader(f))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(f"# Load test: {args.users} users for {args.time}, mock latency {args.mock_ms:g} ms, one worker\n")
    print(f"commit {commit or '?'} · {platform.node()} · {platform.processor() or platform.machine()}\n")
    print("| request | count | failures | req/s | p50 ms | p95 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    total = None
    for r in rows:
        line = (
            f"| {r['Name']} | {r['Request Count']} | {r['Failure Count']} | {float(r['Requests/s']):.1f} "
            f"| {r['50%']} | {r['95%']} | {r['99%']} | {float(r['Max Response Time']):.0f} |"
        )
        if r["Name"] == "Aggregated":
            total = r
            continue
        print(line)
    if total is not None:
        print(
            f"| **all** | **{total['Request Count']}** | **{total['Failure Count']}** "
            f"| **{float(total['Requests/s']):.1f}** | **{total['50%']}** | **{total['95%']}** "
            f"| **{total['99%']}** | **{float(total['Max Response Time']):.0f}** |"
        )
        over = float(total["95%"]) - args.mock_ms
        verdict = "met" if int(total["Failure Count"]) == 0 and over <= 50 else "NOT met"
        print(
            f"\nTarget (0 failures, p95 ≤ {args.mock_ms:g} + 50 ms): **{verdict}** "
            f"(failures {total['Failure Count']}, p95 {total['95%']} ms = {over:.0f} ms over the mock)."
        )
    failures = args.out / "locust_failures.csv"
    if failures.is_file():
        with failures.open() as f:
            fails = list(csv.DictReader(f))
        if fails:
            print("\nFailures:\n")
            for fr in fails[:10]:
                print(f"- {fr['Method']} {fr['Name']}: {fr['Error']} x{fr['Occurrences']}")


if __name__ == "__main__":
    main()
