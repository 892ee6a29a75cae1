"""deploy/smoke.py against two real gateway processes configured like deploy/compose (the compose file's
gateway configuration, with the test's PostgreSQL schema and Redis prefix): replicas share keys, limits,
cache and ledger."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support.gateway_server import gateway_server
from tests.support.stores import REDIS_URL, pg_schema, require_redis

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ADMIN = "smoke-admin-key-0123456789"


def compose_config(redis_prefix: str, journal: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((ROOT / "deploy/compose/tollhouse.yaml").read_text())
    config["server"] = {"host": "127.0.0.1"}  # the test binds loopback on a free port
    config["embedded"] = {"chat": False, "embeddings": False}  # the smoke test uses the `echo` mock
    config["redis"] = {"url": REDIS_URL, "prefix": redis_prefix}
    config["ledger"]["journal_dir"] = journal
    return config


def test_smoke_script_proves_replicas_share_state() -> None:
    require_redis()
    with ExitStack() as stack:
        journal = stack.enter_context(tempfile.TemporaryDirectory())
        config = compose_config(f"th-test-{uuid.uuid4().hex[:12]}:", journal)
        env = {"TOLLHOUSE_ADMIN_KEY": ADMIN, "TOLLHOUSE_PG_DSN": stack.enter_context(pg_schema())}
        a = stack.enter_context(gateway_server(config, env))
        b = stack.enter_context(gateway_server(config, env))
        out = subprocess.run(
            [sys.executable, str(ROOT / "deploy/smoke.py"), "--admin-key", ADMIN, a.root, b.root],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("PASS") == 8 and "FAIL" not in out.stdout
