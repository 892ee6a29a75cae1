"""An in-process app with the response cache on, mock models whose calls are observable (``once``
answers its first call and refuses every second one with a 400, which is not retried), keys, the ledger
and an admin key: shared by the cache's HTTP tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from tests.conftest import mock_settings

from tollhouse.settings import Settings

ADMIN = "admin-secret-for-cache-tests"
ADMIN_ENV = "TH_CACHE_ADMIN"
PRICE = {"input_per_1m": 1_000_000, "output_per_1m": 2_000_000}  # $1 per prompt token, $2 per output token
ONCE = ["ok", "status:400"]  # the first call answers, every second one fails (400s are not retried)


def cache_settings(tmp_path: Path, cache: dict[str, Any] | None = None, **extra: Any) -> Settings:
    base = mock_settings(
        once={"faults": ONCE, "pricing": PRICE},
        echo={"pricing": PRICE},
        short={"reply": "one two three four five six", "pricing": PRICE},
    ).model_dump()
    base["cache"] = {"mode": "exact", **(cache or {})}
    base["keys"] = {"sqlite_path": str(tmp_path / "keys.db")}
    base["ledger"] = {
        "enabled": True,
        "sqlite_path": str(tmp_path / "ledger.db"),
        "journal_dir": str(tmp_path / "journal"),
        "flush_interval_s": 0.05,
    }
    base["auth"] = {"admin_key_env": ADMIN_ENV}
    base.update(extra)
    return Settings.model_validate(base)


def admin(c: TestClient, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    r = c.request(method, path, json=body, headers={"authorization": f"Bearer {ADMIN}"})
    assert r.status_code < 300, r.text
    return r.json()


def new_key(c: TestClient, **spec: Any) -> str:
    secret: str = admin(c, "POST", "/admin/keys", {"name": "t", **spec})["key"]
    return secret


def chat(
    c: TestClient, key: str, text: str = "hello there", model: str = "once", headers: Any = None, **kw: Any
) -> Any:
    """A chat request at temperature 0 (only repeatable requests are cached by default) unless ``kw``
    says otherwise."""
    body = {"model": model, "messages": [{"role": "user", "content": text}], "temperature": 0, **kw}
    return c.post(
        "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}", **(headers or {})}
    )
