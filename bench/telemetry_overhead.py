"""Per-request cost of telemetry, measured in-process: the ASGI app is called directly (no sockets) with
the mock provider, and each configuration's median request time is compared with everything off.

    taskset -c 1 .venv/bin/python bench/telemetry_overhead.py [--requests 200] [--rounds 40]

Configurations: ``off`` (no metrics, no access log, no timing headers, no tracing), ``logs`` (the JSON
access line only, as before metrics existed), ``metrics+logs``
(the defaults: Prometheus metrics, JSON access line to /dev/null, server-timing), ``tracing`` (defaults
plus OpenTelemetry with a batch processor and an exporter that drops spans, so export I/O is not counted).
Rounds interleave the configurations in short blocks, so a noisy neighbour slows all of them alike; each
figure is the median over every request of that configuration, as CPU time of the serving thread
(``thread_time``: immune to being descheduled) and as wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import orjson
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from tollhouse.app import create_app
from tollhouse.settings import LoggingSettings, Settings
from tollhouse.telemetry.logging import configure
from tollhouse.telemetry.observer import Telemetry
from tollhouse.telemetry.tracing import Tracing

BODY = orjson.dumps({"model": "mock", "messages": [{"role": "user", "content": "hello there, how are you?"}]})


class DropExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def settings(logs: bool, metrics: bool) -> Settings:
    return Settings.model_validate(
        {
            "embedded": {"chat": False, "embeddings": False},
            "models": [{"name": "mock", "provider": "mock"}],
            "logging": {"access_log": logs},
            "telemetry": {"server_timing": metrics, "metrics": {"enabled": metrics}},
        }
    )


def build(name: str) -> Any:
    s = settings(logs=name != "off", metrics=name not in ("off", "logs"))
    telemetry = Telemetry(s)
    if name == "tracing":
        telemetry.tracing = Tracing(s.telemetry.tracing, s.all_models())
        telemetry.tracing.provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    return create_app(s, telemetry=telemetry)


async def one(app: Any) -> tuple[float, float]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    c0, t0 = time.thread_time(), time.perf_counter()
    await app(scope, receive, send)
    dt, dc = time.perf_counter() - t0, time.thread_time() - c0
    assert status == 200, status
    return dc, dt


def log_to_devnull() -> None:
    """Access lines are made and written as in production (``configure``: JSON, buffered, ADR 0032), to
    /dev/null."""
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    configure(LoggingSettings(format="json", level="INFO"))


async def main(requests: int, rounds: int, names: list[str]) -> None:

    apps = {n: build(n) for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    wall: dict[str, list[float]] = {n: [] for n in names}
    contexts = [app.router.lifespan_context(app) for app in apps.values()]
    for c in contexts:
        await c.__aenter__()
    try:
        for app in apps.values():  # warm up: build middleware stacks, fill label caches
            for _ in range(300):
                await one(app)
        gc.collect()
        gc.freeze()
        for _ in range(rounds):
            for n in names:
                for _ in range(requests):
                    c, w = await one(apps[n])
                    cpu[n].append(c)
                    wall[n].append(w)
    finally:
        for c in reversed(contexts):
            await c.__aexit__(None, None, None)

    print(f"python {sys.version.split()[0]}, {requests} x {rounds} requests each, mock provider, in-process")
    print(f"{'configuration':<14} {'p50 CPU':>10} {'added':>10} {'p50 wall':>10} {'added':>10}")
    cbase, wbase = statistics.median(cpu[names[0]]), statistics.median(wall[names[0]])
    for n in names:
        c, w = statistics.median(cpu[n]), statistics.median(wall[n])
        print(
            f"{n:<14} {c * 1e6:>7.1f} µs {(c - cbase) * 1e6:>+7.1f} µs "
            f"{w * 1e6:>7.1f} µs {(w - wbase) * 1e6:>+7.1f} µs"
        )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=200, help="requests per block")
    p.add_argument("--rounds", type=int, default=40, help="blocks per configuration")
    p.add_argument(
        "--only", nargs="+", default=["off", "logs", "metrics+logs", "tracing"], help="configurations"
    )
    a = p.parse_args()
    log_to_devnull()
    asyncio.run(main(a.requests, a.rounds, a.only))
