#!/usr/bin/env python3
"""Prove that gateway replicas share limits, cache, keys and the ledger (standard library only).

    python3 deploy/smoke.py --admin-key KEY http://127.0.0.1:8001 http://127.0.0.1:8002

Give each replica's own address (not the load balancer's). The replicas need the shared backends
(`keys` / `ledger` in PostgreSQL, `limits` / `budgets` / `cache` in Redis, as in deploy/compose) and a model
that answers at once (`--model`, default `echo`, a mock). Exits 0 when every check passes; prints one line
per check either way.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any


class Replica:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def call(
        self, method: str, path: str, key: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        req = urllib.request.Request(
            self.base + path,
            data=None if body is None else json.dumps(body).encode(),
            headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
            method=method,
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, json.loads(e.read() or b"null")


def chat(model: str, text: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "temperature": 0,
        "max_tokens": 16,
    }


def until(deadline_s: float, check: Any) -> Any:
    end = time.monotonic() + deadline_s
    while True:
        out = check()
        if out or time.monotonic() > end:
            return out
        time.sleep(0.2)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("replicas", nargs=2, help="base URLs of two replicas")
    p.add_argument("--admin-key", required=True)
    p.add_argument("--model", default="echo")
    args = p.parse_args()
    a, b = Replica(args.replicas[0]), Replica(args.replicas[1])
    admin, model, run = args.admin_key, args.model, uuid.uuid4().hex[:8]
    failures = 0

    def report(ok: bool, what: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {what}", flush=True)

    for r in (a, b):
        status, _, body = r.call("GET", "/health/ready", admin)
        checks = body.get("checks", {}) if isinstance(body, dict) else {}
        stores = {k: v["status"] for k, v in checks.items() if k in ("redis", "database")}
        report(
            status == 200 and stores == {"redis": "ok", "database": "ok"}, f"{r.base} ready, stores {stores}"
        )

    # Keys: created on A, usable on B.
    status, _, key = a.call("POST", "/admin/keys", admin, {"name": f"smoke-{run}", "rpm": 5})
    report(status == 201, f"key created on A ({key.get('id') if isinstance(key, dict) else key})")
    secret, key_id = key["key"], key["id"]
    first_use = time.monotonic()  # the key's bucket starts full at its first request and refills 5/60 per s
    seen = until(5, lambda: b.call("POST", "/v1/chat/completions", secret, chat(model, "hello"))[0] == 200)
    report(bool(seen), "the key works on B")

    # Limits: rpm 5 across both replicas (B has used one already).
    statuses = [
        r.call("POST", "/v1/chat/completions", secret, chat(model, f"n{i}"))[0]
        for i, r in enumerate([a, b, a, b, a, b])
    ]
    refilled = int((time.monotonic() - first_use) * 5 / 60)  # tokens back since the first request
    allowed = min(6, 4 + refilled)
    report(
        statuses.count(200) + statuses.count(429) == 6
        and 4 <= statuses.count(200) <= allowed
        and (allowed == 6 or 429 in statuses),
        f"one rpm limit of 5 over both replicas: statuses {statuses} ({allowed} allowed)",
    )

    # Cache: an answer stored by A is served by B.
    _, _, k2 = a.call("POST", "/admin/keys", admin, {"name": f"smoke-cache-{run}"})
    # A sentence, not a bare "cache probe <hex>": three words around one random token are read as an
    # injection about 2 % of the time by the detector (0 of 5,000 for this sentence), which made this flaky.
    prompt = f"Please say hello to the visitor from smoke test {run}."
    s1, h1, _ = a.call("POST", "/v1/chat/completions", k2["key"], chat(model, prompt))
    s2, h2 = 0, {}
    for _ in range(25):  # the store is written in the background: give it a moment
        s2, h2, _ = b.call("POST", "/v1/chat/completions", k2["key"], chat(model, prompt))
        if h2.get("x-tollhouse-cache") == "hit":
            break
        time.sleep(0.2)
    report(
        s1 == s2 == 200 and h1.get("x-tollhouse-cache") == "miss" and h2.get("x-tollhouse-cache") == "hit",
        f"cache: miss on A, then hit on B ({h1.get('x-tollhouse-cache')} → {h2.get('x-tollhouse-cache')})",
    )

    # Ledger: B's report counts what A and B served for the first key (flushed within a second or two).
    def counted() -> int:
        _, _, u = b.call("GET", "/admin/usage?group_by=key_id", admin)
        rows = [r for r in u.get("data", []) if r.get("key_id") == key_id]
        return int(rows[0]["requests"]) if rows else 0

    n = until(10, lambda: counted() >= 7 and counted())
    report(n == 7, f"ledger on B counts the key's 7 requests from both replicas (saw {n})")

    # Revocation on B is seen by A.
    b.call("POST", f"/admin/keys/{key_id}/revoke", admin)
    refused = until(5, lambda: a.call("POST", "/v1/chat/completions", secret, chat(model, "x"))[0] == 401)
    report(bool(refused), "a key revoked on B is refused by A")

    print(f"\n{'all checks passed' if not failures else f'{failures} check(s) failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
