"""Cost of the JSON access line (not a test), in process: through ``logging`` (a ``LogRecord``, the JSON
formatter, one write(2) per line under the handler lock, as before ADR 0032) against the line built by
``access_line`` and written by a ``LineWriter`` once per batch of lines (one batch per event-loop iteration
when serving). Output to /dev/null. CPU µs per line, median of interleaved rounds.

    .venv/bin/python bench/access_line.py --lines 20000 --rounds 7 --batch 8
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from typing import Any

from tollhouse.context import request_id_var
from tollhouse.telemetry.linewriter import LineWriter
from tollhouse.telemetry.logging import JsonFormatter, access_line

FIELDS: dict[str, Any] = {
    "method": "POST",
    "path": "/v1/chat/completions",
    "status": 200,
    "latency_ms": 1.23,
    "model": "m",
    "model_served": "m",
    "deployment": "m",
    "stream": False,
    "overhead_ms": 0.412,
    "prompt_tokens": 12,
    "completion_tokens": 5,
    "finish_reason": "stop",
    "key_id": "k_0123456789",
}


def via_logging(lines: int) -> float:
    stream = open(os.devnull, "w")  # noqa: SIM115
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("tollhouse.access")
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    t = time.process_time()
    for _ in range(lines):
        log.info("request", extra=dict(FIELDS))
    spent = time.process_time() - t
    root.handlers.clear()
    stream.close()
    return spent / lines


def direct(lines: int, batch: int) -> float:
    stream = open(os.devnull, "w")  # noqa: SIM115
    writer = LineWriter(stream)
    t = time.process_time()
    for i in range(lines):
        writer._lines.append(access_line(dict(FIELDS)))  # queued as ``write`` does inside a loop
        if i % batch == 0:
            writer.flush()  # once per event-loop iteration
    writer.flush()
    spent = time.process_time() - t
    writer.close()
    stream.close()
    return spent / lines


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--lines", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--batch", type=int, default=8)
    a = p.parse_args()
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    request_id_var.set("0123456789abcdef0123456789abcdef")
    old: list[float] = []
    new: list[float] = []
    for _ in range(a.rounds):
        old.append(via_logging(a.lines))
        new.append(direct(a.lines, a.batch))
    mo, mn = statistics.median(old), statistics.median(new)
    print(
        f"logging: {mo * 1e6:.2f} µs/line  direct+batch{a.batch}: {mn * 1e6:.2f} µs/line  ratio {mn / mo:.2f}"
    )
    print("per-round ratios:", " ".join(f"{n / o:.2f}" for o, n in zip(old, new, strict=True)))


if __name__ == "__main__":
    main()
