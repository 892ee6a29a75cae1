"""The floor under Tollhouse's per-request cost on this stack: a bare ASGI relay, nothing else.

What it does per request is the least any Python gateway on uvicorn (uvloop + httptools, the settings
``tollhouse serve`` uses) must do: read the body, send it to the upstream through Tollhouse's own HTTP client
(``providers.http``, keep-alive pool), and answer with the upstream's body. No framework, no auth, limits,
guardrails, ledger, logging or metrics. ``bench/instructions.py --floor`` counts its instructions per
request beside the gateway's, so the share of a request that Tollhouse's own features cost can be read off.

    python3 bench/relay_floor.py --port 8080 --upstream http://127.0.0.1:18080/v1
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

from tollhouse.providers.http.client import HttpClient, Timeouts

Scope = dict[str, Any]


def build(upstream: str) -> Any:
    client: HttpClient | None = None
    head = b""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        nonlocal client, head
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    client = HttpClient(
                        upstream,
                        {"Content-Type": "application/json"},
                        max_connections=256,
                        timeouts=Timeouts(5.0, 30.0, 60.0),
                    )
                    head = client.target("POST", "/chat/completions")
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if client is not None:
                        await client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        assert client is not None
        answer = await client.request(head, body)
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--upstream", default="http://127.0.0.1:18080/v1")
    a = ap.parse_args()
    uvicorn.run(
        build(a.upstream),
        host="127.0.0.1",
        port=a.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        timeout_keep_alive=30,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
