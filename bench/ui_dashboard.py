"""Dashboard speed on the embedded defaults (not a test): a SQLite ledger of 100k records over 30 days, a
gateway process serving it, each page fetched signed in (server time to last byte, p50 / p95 of
``--fetches``), then the Overview's first contentful paint in headless Chromium (Debian's, when installed).

    .venv/bin/python bench/ui_dashboard.py                       # figures
    .venv/bin/python bench/ui_dashboard.py --screenshots docs/ui  # and a screenshot of every page

Screenshots: every page at 1280 px and at a 390 px phone, light and dark.
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from ui_seed import MODELS, seed

ADMIN = "th-bench-admin-key-0123456789abcdef"
PAGES = [
    "/ui/",
    "/ui/?window=day",
    "/ui/?window=month",
    "/ui/requests",
    "/ui/keys",
    "/ui/models",
    "/ui/cache",
]
SHOTS = [
    "/ui/",
    "/ui/requests",
    "/ui/keys",
    "/ui/models",
    "/ui/cache",
    "/ui/prompts",
    "/ui/prompts/support-reply",
    "/ui/audit",
]
CHROMIUM = "/usr/bin/chromium"
# The page's first contentful paint (ms after navigation start), once the browser has reported it.
FCP_JS = """() => new Promise(done => {
  new PerformanceObserver(list => {
    const e = list.getEntriesByName('first-contentful-paint')[0];
    if (e) done(e.startTime);
  }).observe({type: 'paint', buffered: true});
  setTimeout(() => done(null), 5000);
})"""
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def config(tmp: Path) -> dict[str, Any]:
    models = [
        {
            "name": m,
            "provider": "mock",
            "max_output_tokens": 512,
            "pricing": {"input_per_1m": i, "output_per_1m": o},
        }
        for m, i, o in MODELS
    ]
    return {
        "embedded": {"chat": False, "embeddings": False},
        "models": models,
        "routing": {
            "groups": [
                {
                    "name": "smart",
                    "strategy": "latency",
                    "deployments": [{"model": "gpt-4o"}, {"model": "claude-haiku"}],
                    "fallbacks": [{"to": ["llama-local"]}],
                }
            ]
        },
        "auth": {"admin_key_env": "TH_BENCH_ADMIN"},
        "keys": {"sqlite_path": str(tmp / "keys.db")},
        "ledger": {
            "sqlite_path": str(tmp / "ledger.db"),
            "journal_dir": str(tmp / "journal"),
            "flush_interval_s": 0.2,
        },
        "prompts": {"enabled": True, "backend": "sqlite", "sqlite_path": str(tmp / "prompts.db")},
        "budgets": {"teams": {"search": {"daily_usd": 20.0, "monthly_usd": 400.0}}},
        "cache": {"mode": "exact"},
        "logging": {"format": "text", "access_log": False},
    }


class Client:
    """A signed-in dashboard session over plain HTTP."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> str:
        with self.opener.open(self.root + path, timeout=30) as r:
            return str(r.read().decode())

    def post(self, path: str, fields: dict[str, str]) -> str:
        data = urllib.parse.urlencode(fields).encode()
        with self.opener.open(self.root + path, data=data, timeout=30) as r:
            return str(r.read().decode())

    def sign_in(self) -> None:
        page = self.get("/ui/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token is not None
        self.post("/ui/login", {"csrf": token.group(1), "username": "", "secret": ADMIN})

    def csrf(self, page: str) -> str:
        token = re.search(r'name="csrf" value="([^"]+)"', self.get(page))
        assert token is not None
        return token.group(1)

    def api(self, method: str, path: str, body: Any) -> Any:
        import json

        req = urllib.request.Request(
            self.root + path,
            data=json.dumps(body).encode(),
            method=method,
            headers={"authorization": f"Bearer {ADMIN}", "content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())


def start(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    cfg = tmp / "tollhouse.yaml"
    cfg.write_text(yaml.safe_dump(config(tmp)))
    env = {**os.environ, "TH_BENCH_ADMIN": ADMIN}
    cmd = [sys.executable, "-m", "tollhouse.cli", "serve", "--config", str(cfg), "--port", str(port)]
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError((tmp / "server.log").read_text())


def prepare(c: Client, root: str) -> str:
    """Keys with budgets, a prompt with versions and an experiment, and a little live traffic."""
    import openai

    # Through the dashboard's own forms (so the audit log has entries), then the admin API.
    csrf = c.csrf("/ui/keys")
    page = c.post("/ui/keys", {"csrf": csrf, "name": "search-prod", "user": "alice", "team": "search"})
    key_id = re.findall(r'href="/ui/keys/(key_[0-9a-f]+)"', page)[0]
    c.post(f"/ui/keys/{key_id}", {"csrf": csrf, "daily_usd": "5", "models": "smart, gpt-4o-mini"})
    page = c.post(f"/ui/keys/{key_id}/rotate", {"csrf": csrf})
    secret = {"key": re.findall(r'value="(th-[^"]+)"', page)[0]}
    c.api("POST", "/admin/keys", {"name": "support-bot", "user": "carol", "team": "support", "rpm": 600})
    for n, text in enumerate(
        ["You answer support tickets.", "You answer support tickets politely and briefly."]
    ):
        body = {
            "messages": [{"role": "system", "content": text}, {"role": "user", "content": "{{ ticket }}"}]
        }
        c.api("POST", "/admin/prompts/support-reply/versions", body)
        c.api("PUT", "/admin/prompts/support-reply/labels/production", {"version": n + 1})
    c.api("PUT", "/admin/prompts/support-reply/experiment", {"arms": {"1": 80, "2": 20}})
    c.post("/ui/prompts/support-reply/rollback", {"csrf": csrf, "label": "production"})
    c.post("/ui/cache/invalidate", {"csrf": csrf, "model": "gpt-4o"})
    client = openai.OpenAI(base_url=root + "/v1", api_key=secret["key"])
    rid = ""
    for i in range(12):
        raw = client.chat.completions.with_raw_response.create(
            model="smart", messages=[{"role": "user", "content": f"hello {i}"}]
        )
        rid = raw.headers["x-request-id"]
    return rid


def fetch_times(c: Client, fetches: int) -> dict[str, tuple[float, float]]:
    out = {}
    for path in PAGES:
        c.get(path)  # warm
        times = []
        for _ in range(fetches):
            t0 = time.perf_counter()
            c.get(path)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        out[path] = (statistics.median(times), times[int(0.95 * (len(times) - 1))])
    return out


def browser(root: str, shots: Path | None, fetches: int, request_id: str) -> list[float]:
    from playwright.sync_api import sync_playwright

    paints: list[float] = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ctx = b.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        page.goto(root + "/ui/login")
        page.fill("#secret", ADMIN)
        page.click("button[type=submit]")
        page.wait_for_url(root + "/ui/")
        for _ in range(fetches):
            page.goto(root + "/ui/", wait_until="load")
            fcp = page.evaluate(FCP_JS)
            if fcp is not None:
                paints.append(float(fcp))
        ctx.close()
        if shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
            for scheme in ("light", "dark"):
                for name, vp in (
                    ("desktop", {"width": 1280, "height": 900}),
                    ("phone", {"width": 390, "height": 844}),
                ):
                    ctx = b.new_context(viewport=vp, color_scheme=scheme, device_scale_factor=1)
                    page = ctx.new_page()
                    page.goto(root + "/ui/login")
                    page.screenshot(path=str(shots / f"login-{name}-{scheme}.png"))
                    page.fill("#secret", ADMIN)
                    page.click("button[type=submit]")
                    page.wait_for_url(root + "/ui/")
                    for path in [*SHOTS, f"/ui/requests/{request_id}"]:
                        page.goto(root + path)
                        page.wait_for_timeout(600)
                        slug = path.removeprefix("/ui/").replace("/", "-") or "overview"
                        slug = "request-detail" if request_id in slug else slug
                        page.screenshot(
                            path=str(shots / f"{slug}-{name}-{scheme}.png"),
                            full_page=name == "desktop" and path != "/ui/requests",
                        )
                    ctx.close()
        b.close()
    return sorted(paints)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--fetches", type=int, default=20)
    ap.add_argument("--port", type=int, default=18777)
    ap.add_argument("--screenshots", type=Path, default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tollhouse-ui-bench-"))
    try:
        t0 = time.perf_counter()
        asyncio.run(seed(str(tmp / "ledger.db"), args.rows, 30))
        print(f"seeded {args.rows} ledger rows in {time.perf_counter() - t0:.1f} s")
        proc = start(tmp, args.port)
        try:
            root = f"http://127.0.0.1:{args.port}"
            c = Client(root)
            c.sign_in()
            request_id = prepare(c, root)
            time.sleep(0.5)  # the ledger's flush interval
            print(f"{'page':28} {'p50 ms':>8} {'p95 ms':>8}   (server, last byte; {args.fetches} fetches)")
            for path, (p50, p95) in fetch_times(c, args.fetches).items():
                print(f"{path:28} {p50:8.1f} {p95:8.1f}")
            if Path(CHROMIUM).exists():
                paints = browser(root, args.screenshots, min(args.fetches, 10), request_id)
                if paints:
                    p50 = statistics.median(paints)
                    print(
                        f"Overview first contentful paint in Chromium: p50 {p50:.0f} ms, "
                        f"max {paints[-1]:.0f} ms ({len(paints)} loads)"
                    )
            else:
                print(f"{CHROMIUM} not installed: no paint timing, no screenshots")
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
