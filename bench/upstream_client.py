"""CPU per upstream request: aiohttp (as the providers used it until ADR 0031) against ``providers.http``.

In process, on uvloop, against the kit's Go mock upstream started on its own core: each round runs each
client once per shape (sequential POSTs, then 64 concurrent), interleaved, and records this process's CPU
seconds per request. Prints medians over rounds and the per-round ratios.

    PYTHONPATH=src taskset -c 1 python bench/upstream_client.py --rounds 5 --requests 3000 \
        [--clients aiohttp,lean,httpx,aiosonic,pyreqwest]   # the last two: pip install them first
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).parent))
from harness import BIN, Group, build_kit

from tollhouse.providers import http

PORT = 18180
BASE = f"http://127.0.0.1:{PORT}/v1"
BODY = orjson.dumps(
    {
        "model": "bench-model",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hello in one short sentence, please."},
        ],
        "max_tokens": 32,
    }
)
HEADERS = {"User-Agent": "tollhouse", "Authorization": "Bearer sk-upstream"}
JSON = {"Content-Type": "application/json"}

Call = Callable[[], Awaitable[bytes]]


async def aiohttp_client() -> tuple[Call, Callable[[], Awaitable[None]]]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=300, keepalive_timeout=30.0),
        timeout=aiohttp.ClientTimeout(total=30, connect=30, sock_read=30),
        headers=HEADERS,
    )
    url = f"{BASE}/chat/completions"

    async def call() -> bytes:
        async with session.post(url, data=BODY, headers=JSON) as resp:
            if resp.status != 200:
                raise RuntimeError(resp.status)
            return await resp.read()

    return call, session.close


async def lean_client() -> tuple[Call, Callable[[], Awaitable[None]]]:
    client = http.HttpClient(
        BASE, HEADERS, max_connections=100, timeouts=http.Timeouts(connect=30, read=30, total=30)
    )
    head = client.target("POST", "/chat/completions", JSON)

    async def call() -> bytes:
        resp = await client.request(head, BODY, None)
        if resp.status != 200:
            raise RuntimeError(resp.status)
        return resp.body

    return call, client.aclose


async def httpx_client() -> tuple[Call, Callable[[], Awaitable[None]]]:
    import httpx

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=30)
    client = httpx.AsyncClient(headers=HEADERS, limits=limits, timeout=30)
    url = f"{BASE}/chat/completions"

    async def call() -> bytes:
        resp = await client.post(url, content=BODY, headers=JSON)
        if resp.status_code != 200:
            raise RuntimeError(resp.status_code)
        return resp.content

    return call, client.aclose


async def aiosonic_client() -> tuple[Call, Callable[[], Awaitable[None]]]:
    import aiosonic  # type: ignore[import-not-found]

    client = aiosonic.HTTPClient(aiosonic.TCPConnector(pool_configs={":default": {"size": 100}}))
    url = f"{BASE}/chat/completions"
    headers = {**HEADERS, **JSON}

    async def call() -> bytes:
        resp = await client.post(url, data=BODY, headers=headers)
        if resp.status_code != 200:
            raise RuntimeError(resp.status_code)
        body: bytes = await resp.content()
        return body

    async def close() -> None:
        await client.connector.cleanup()

    return call, close


async def pyreqwest_client() -> tuple[Call, Callable[[], Awaitable[None]]]:
    from datetime import timedelta

    from pyreqwest.client import ClientBuilder  # type: ignore[import-not-found]

    client = (
        ClientBuilder().max_connections(100).default_headers(HEADERS).timeout(timedelta(seconds=30)).build()
    )
    url = f"{BASE}/chat/completions"

    async def call() -> bytes:
        resp = await client.post(url).headers(JSON).body_bytes(BODY).build().send()
        if resp.status != 200:
            raise RuntimeError(resp.status)
        return bytes(await resp.bytes())

    return call, client.close


CLIENTS = {
    "aiohttp": aiohttp_client,
    "lean": lean_client,
    "httpx": httpx_client,
    "aiosonic": aiosonic_client,
    "pyreqwest": pyreqwest_client,
}


async def run(call: Call, requests: int, concurrency: int) -> float:
    """CPU seconds of this process per request."""
    for _ in range(50):  # warm the pool
        await call()
    per_worker = requests // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await call()

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - cpu) / (per_worker * concurrency)


async def main(rounds: int, requests: int, clients: list[str]) -> None:
    makers = {name: CLIENTS[name] for name in clients}
    results: dict[tuple[str, int], list[float]] = {}
    for r in range(rounds):
        for conc in (1, 64):
            for name, make in makers.items():
                call, close = await make()
                try:
                    us = await run(call, requests, conc) * 1e6
                finally:
                    await close()
                results.setdefault((name, conc), []).append(us)
                print(f"round {r + 1} c{conc} {name}: {us:.1f} µs CPU/request", flush=True)
    print("\n| shape | client | µs CPU/request (median) | / aiohttp (median of per-round ratios) |")
    print("|---|---|---|---|")
    for conc in (1, 64):
        base = results[(clients[0], conc)]
        for name in clients:
            own = results[(name, conc)]
            ratios = [y / x for x, y in zip(base, own, strict=True)]
            print(
                f"| {'sequential' if conc == 1 else f'{conc} concurrent'} | {name} | "
                f"{statistics.median(own):.1f} | {statistics.median(ratios):.2f} "
                f"({', '.join(f'{x:.2f}' for x in ratios)}) |"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--mock-cpu", default="0")
    parser.add_argument(
        "--clients",
        default="aiohttp,lean",
        help=f"comma-separated, first = base: {', '.join(CLIENTS)}",
    )
    args = parser.parse_args()
    build_kit()
    mock = Group(f"{BIN / 'mockupstream'} -addr 127.0.0.1:{PORT}", args.mock_cpu, {"GOMAXPROCS": "1"})
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", PORT), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        uvloop.run(main(args.rounds, args.requests, args.clients.split(",")))
    finally:
        mock.stop()
