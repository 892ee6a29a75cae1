"""Fixture ``make``: builds (and closes) cache-enabled apps; see tests/support/cache_app.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.support.cache_app import ADMIN, ADMIN_ENV, cache_settings

from tollhouse.app import create_app


@pytest.fixture
def make(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv(ADMIN_ENV, ADMIN)
    clients: list[TestClient] = []

    def build(cache: dict[str, Any] | None = None, **extra: Any) -> TestClient:
        c = TestClient(create_app(cache_settings(tmp_path, cache, **extra)), raise_server_exceptions=False)
        c.__enter__()
        clients.append(c)
        return c

    yield build
    for c in clients:
        c.__exit__(None, None, None)
