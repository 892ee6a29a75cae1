"""Several workers, one /metrics: prometheus_client's multiprocess mode sums every worker's samples
(ADR 0005), so any scrape sees every request whichever worker served it."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tests.support.gateway_server import gateway_server


def _requests_total(text: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "tollhouse_requests":
            for s in family.samples:
                if s.name == "tollhouse_requests_total" and s.labels.get("model") == "m":
                    total += s.value
    return total


def test_two_workers_share_one_scrape(tmp_path: Path) -> None:
    config = {
        "embedded": {"chat": False, "embeddings": False},
        "server": {"workers": 2},
        "models": [{"name": "m", "provider": "mock"}],
    }
    mp_dir = tmp_path / "metrics"
    with gateway_server(config, env={"PROMETHEUS_MULTIPROC_DIR": str(mp_dir)}) as gw:
        deadline = time.monotonic() + 15
        while gw.log().count('"msg":"ready"') < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        sent = 0
        with httpx.Client(timeout=10) as c:
            # New connections each time, until both workers have served some (the kernel picks the worker;
            # on a loaded machine one may take many in a row).
            while sent < 12 or len(_worker_pids(mp_dir)) < 2:
                assert sent < 400, f"one worker served all {sent} requests"
                r = httpx.post(
                    gw.base_url + "/chat/completions",
                    json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                    timeout=10,
                )
                assert r.status_code == 200
                sent += 1
            root = gw.base_url.removesuffix("/v1")
            for _ in range(3):  # whichever worker answers the scrape, it reports all of them
                assert _requests_total(c.get(root + "/metrics").text) == sent
        assert len(_worker_pids(mp_dir)) == 2


def _worker_pids(mp_dir: Path) -> set[str]:
    """The workers that have counted a request (prometheus_client writes one file per process)."""
    return {p.stem.split("_")[-1] for p in mp_dir.glob("counter_*.db")}
