"""What waking an idle CPU costs on this machine: the floor under the gateway's latency at low load.

Two processes pinned to different CPUs ping-pong one byte over a pair of pipes. ``--gap-ms 0`` sends the next
ping as soon as the pong arrives (both CPUs stay busy, no idle wake-up); ``--gap-ms 10`` waits 10 ms between
pings (100 per second, like the benchmark's 100 req/s point), so each ping wakes an idle CPU and each pong
wakes the other. The difference of the two round-trip medians is the cost of two wake-ups. A relayed request
adds at least two of them on the gateway's CPU (the request, then the upstream's answer) to the direct path.

    python3 bench/wakeup.py --rounds 3
    echo 200000 > /sys/module/haltpoll/parameters/guest_halt_poll_ns   # then again, to compare (root, a VM)

Standard library only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def _echo(rfd: int, wfd: int, cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})
    while True:
        b = os.read(rfd, 1)
        if not b or b == b"q":
            os._exit(0)
        os.write(wfd, b)


def measure(gap_s: float, n: int, cpus: tuple[int, int]) -> float:
    """Median round trip in µs over ``n`` pings sent ``gap_s`` apart."""
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(to_child_w)
        os.close(to_parent_r)
        _echo(to_child_r, to_parent_w, cpus[1])
    os.close(to_child_r)
    os.close(to_parent_w)
    os.sched_setaffinity(0, {cpus[0]})
    rtts: list[float] = []
    try:
        for i in range(n + 20):
            if gap_s:
                time.sleep(gap_s)
            t0 = time.perf_counter_ns()
            os.write(to_child_w, b"p")
            os.read(to_parent_r, 1)
            if i >= 20:  # warm-up pings not recorded
                rtts.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        os.write(to_child_w, b"q")
        os.waitpid(pid, 0)
        os.close(to_child_w)
        os.close(to_parent_r)
    return statistics.median(rtts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=500, help="pings per measurement")
    ap.add_argument("--gap-ms", type=float, default=10.0, help="pause between pings at the low rate")
    ap.add_argument("--cpus", default="0,1", help="the two CPUs (pinger, echoer)")
    args = ap.parse_args()
    a, b = (int(x) for x in args.cpus.split(","))
    try:
        with open("/sys/module/haltpoll/parameters/guest_halt_poll_ns") as f:
            poll = f.read().strip()
    except OSError:
        poll = "n/a"
    print(f"guest_halt_poll_ns={poll} load={os.getloadavg()[0]:.2f}")
    busy: list[float] = []
    idle: list[float] = []
    for r in range(args.rounds):
        busy.append(measure(0.0, args.n, (a, b)))
        idle.append(measure(args.gap_ms / 1000, args.n, (a, b)))
        print(f"round {r}: back to back {busy[-1]:.1f} µs, {args.gap_ms:g} ms apart {idle[-1]:.1f} µs")
    mb, mi = statistics.median(busy), statistics.median(idle)
    print(f"median round trip: back to back {mb:.1f} µs, idle {mi:.1f} µs; two wake-ups {mi - mb:.1f} µs")


if __name__ == "__main__":
    main()
